"""The ONNX Runtime backend of the frozen encoders (prodcat_django.ml.onnx_backend): same outputs
as torch on drawn images, a logged fallback to torch where onnxruntime is missing, and a cached
export that is reused, and rebuilt when the file is corrupt."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch

from prodcat_django.ml import onnx_backend
from prodcat_django.ml.encoders import (
    TinyRandomImageEncoder,
    build_image_encoder,
    build_text_encoder,
    image_encoder_spec,
    text_encoder_spec,
)
from prodcat_django.ml.predictor import Predictor, ProductInput
from tests.ml.conftest import drawn_image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")  # the exporter writes through it

SHAPES = [("square", "navy"), ("circle", "red"), ("triangle", "green"), ("square", "gold")]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRODCAT_ONNX_CACHE", str(tmp_path / "onnx"))
    monkeypatch.delenv("PRODCAT_ENCODER_BACKEND", raising=False)


@pytest.fixture
def exports(monkeypatch) -> list[str]:
    """The paths onnx_backend exported to (a spy on its exporter)."""
    calls: list[str] = []
    real = onnx_backend.export

    def spy(network, example, path, *names):
        calls.append(str(path))
        return real(network, example, path, *names)

    monkeypatch.setattr(onnx_backend, "export", spy)
    return calls


def drawn() -> list:
    return [drawn_image(shape, colour) for shape, colour in SHAPES]


def test_onnx_image_encoder_matches_torch_on_drawn_images(exports):
    torch_enc = TinyRandomImageEncoder(channels=8, seed=3)
    onnx_enc = onnx_backend.with_backend(TinyRandomImageEncoder(channels=8, seed=3), "onnx")
    assert onnx_enc.backend == "onnx" and onnx_enc.encoder_id == torch_enc.encoder_id
    assert len(exports) == 1
    for flip in (False, True):
        want, got = torch_enc.encode(drawn(), flip=flip), onnx_enc.encode(drawn(), flip=flip)
        assert got.shape == want.shape == (4, 8, 7, 7)
        assert float(want.abs().max()) > 0.1  # the drawn shapes light the maps up
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_predictor_onnx_backend_predicts_what_torch_does(tiny_checkpoint):
    items = [
        ProductInput(f"{shape} {colour} item", drawn_image(shape, colour))
        for shape, colour in SHAPES
    ]
    by_torch = Predictor.load(tiny_checkpoint, device="cpu", backend="torch")
    by_onnx = Predictor.load(tiny_checkpoint, device="cpu", backend="onnx")
    assert by_torch.image_encoder.backend == "torch" and by_onnx.image_encoder.backend == "onnx"
    for a, b in zip(by_torch.predict(items), by_onnx.predict(items), strict=True):
        assert [x.label for x in a.labels] == [x.label for x in b.labels]
        assert [x.score for x in a.labels] == pytest.approx([x.score for x in b.labels], abs=1e-5)


def test_auto_falls_back_to_torch_with_a_logged_reason_without_onnxruntime(
    monkeypatch, caplog, tmp_path
):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    encoder = TinyRandomImageEncoder(channels=8)
    encoder.local_copy = tmp_path  # as a pretrained encoder: auto tries ONNX for it
    with caplog.at_level(logging.WARNING, logger="prodcat_django.ml.onnx"):
        chosen = onnx_backend.with_backend(encoder, "auto")
    assert chosen is encoder and chosen.backend == "torch"
    assert "torch backend, not onnx" in caplog.text
    assert "onnxruntime is not importable" in caplog.text
    with pytest.raises(onnx_backend.OnnxUnavailable, match="install prodcat-django\\[onnx\\]"):
        onnx_backend.with_backend(encoder, "onnx")  # asked for explicitly: an error, not torch


def test_auto_keeps_test_encoders_and_other_devices_on_torch(exports, tmp_path):
    tiny = TinyRandomImageEncoder(channels=8)
    assert onnx_backend.with_backend(tiny, "auto") is tiny  # no pretrained weights
    tiny.local_copy = tmp_path
    assert onnx_backend.with_backend(tiny, "auto", device="cuda") is tiny
    with pytest.raises(onnx_backend.OnnxUnavailable, match="CPU only"):
        onnx_backend.with_backend(tiny, "onnx", device="cuda")
    assert onnx_backend.with_backend(tiny, "auto").backend == "onnx"
    assert len(exports) == 1


def test_backend_names_are_checked(monkeypatch):
    with pytest.raises(ValueError, match="unknown encoder backend 'tensorrt'"):
        onnx_backend.resolve_backend("tensorrt")
    monkeypatch.setenv("PRODCAT_ENCODER_BACKEND", "torch")
    assert onnx_backend.resolve_backend(None) == "torch"
    assert onnx_backend.resolve_backend("ONNX") == "onnx"


def test_cached_export_is_reused_not_exported_again(exports):
    first = onnx_backend.with_backend(TinyRandomImageEncoder(channels=8, seed=1), "onnx")
    second = onnx_backend.with_backend(TinyRandomImageEncoder(channels=8, seed=1), "onnx")
    assert (first.onnx_status, second.onnx_status) == ("exported", "reused")
    assert exports == [str(first.onnx_path)] and second.onnx_path == first.onnx_path
    assert first.onnx_path.name.endswith(
        f"-ort{onnx_backend.import_onnxruntime().__version__}.onnx"
    )
    # Other weights: another file, exported on its own.
    other = onnx_backend.with_backend(TinyRandomImageEncoder(channels=8, seed=2), "onnx")
    assert other.onnx_status == "exported" and other.onnx_path != first.onnx_path
    assert len(exports) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cached_export_is_rebuilt(exports, caplog, damage):
    first = onnx_backend.with_backend(TinyRandomImageEncoder(channels=8, seed=1), "onnx")
    path = first.onnx_path
    data = path.read_bytes()
    path.write_bytes(b"not an onnx model" if damage == "garbage" else data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="prodcat_django.ml.onnx"):
        again = onnx_backend.with_backend(TinyRandomImageEncoder(channels=8, seed=1), "onnx")
    assert again.onnx_status == "exported" and len(exports) == 2
    assert "is unusable" in caplog.text and "exporting it again" in caplog.text
    assert path.read_bytes() == data  # the same export, whole again
    want = TinyRandomImageEncoder(channels=8, seed=1).encode(drawn())
    torch.testing.assert_close(again.encode(drawn()), want, atol=1e-5, rtol=1e-5)


def test_a_session_that_disagrees_with_torch_is_not_used():
    expected = np.ones((1, 4), dtype=np.float32)
    assert onnx_backend.check(expected, expected + 1e-6, "probe") <= 1e-6
    with pytest.raises(ValueError, match="differs from torch"):
        onnx_backend.check(expected, expected + 0.5, "probe")
    with pytest.raises(ValueError, match="differs from torch"):
        onnx_backend.check(expected, expected * np.nan, "probe")
    with pytest.raises(ValueError, match="shape"):
        onnx_backend.check(expected, np.ones((2, 4), dtype=np.float32), "probe")


@pytest.mark.slow
def test_real_encoders_on_onnx_match_torch(exports):
    """EfficientNet-Lite0 (BatchNorms folded) and MiniLM, as the predictor runs them."""
    images = drawn()
    titles = ["Slim fit navy shirt", "", "Red leather ankle boots with a zip, size 39", "Mug"]
    torch_image = build_image_encoder(image_encoder_spec(), backend="torch")
    onnx_image = build_image_encoder(image_encoder_spec(), backend="onnx")
    want = torch_image.encode(images)
    assert onnx_image.backend == "onnx" and want.shape == (4, 192, 7, 7)
    torch.testing.assert_close(onnx_image.encode(images), want, atol=1e-3, rtol=0)
    torch_text = build_text_encoder(text_encoder_spec(), backend="torch")
    onnx_text = build_text_encoder(text_encoder_spec(), backend="onnx")
    assert onnx_text.backend == "onnx" and not hasattr(onnx_text, "model")
    for a, b in zip(torch_text.encode(titles), onnx_text.encode(titles), strict=True):
        assert (a.words, a.token_word) == (b.words, b.token_word)
        torch.testing.assert_close(b.states, a.states, atol=1e-4, rtol=0)
    assert len(exports) == 2
    # Loaded again: both files reused.
    assert build_image_encoder(image_encoder_spec(), backend="auto").onnx_status == "reused"
    assert len(exports) == 2


def test_a_forked_process_opens_its_own_session_with_its_threads():
    """As a Celery worker: loaded in the parent at one torch thread, used in a forked child at
    two; the child's session has the child's threads and gives the torch encoder's maps. (The
    child runs ONNX Runtime only: torch's own thread pool, which this test process already
    has, does not survive a fork; the worker's main process never starts one.)"""
    from tests.forks import facts_from_fork

    torch.set_num_threads(1)
    encoder = onnx_backend.with_backend(TinyRandomImageEncoder(channels=8, seed=5), "onnx")
    torch.set_num_threads(2)
    parent_session = encoder._sessions.session
    pixels = encoder.preprocess(drawn())

    def child() -> dict:
        maps = encoder.forward_pixels(pixels)
        sessions = encoder._sessions
        return {
            "new_session": sessions.session is not parent_session,
            "threads": sessions.threads,
            "maps": maps.flatten().tolist(),
        }

    facts = facts_from_fork(child)
    want = TinyRandomImageEncoder(channels=8, seed=5).forward_pixels(pixels).flatten()
    assert facts["new_session"] and facts["threads"] == 2
    torch.testing.assert_close(torch.tensor(facts["maps"]), want, atol=1e-5, rtol=1e-5)
    assert encoder._sessions.session is parent_session  # the parent's own stays as it was
