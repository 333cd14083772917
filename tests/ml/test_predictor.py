import math

import pytest
import torch

from prodcat_django.ml.model import FusionModel
from prodcat_django.ml.predictor import Explanation, Prediction, Predictor, ProductInput
from prodcat_django.ml.testing import build_random_checkpoint, tiny_config

from .conftest import LABELS, drawn_image

ITEMS = [
    ProductInput("Navy cotton shirt with long sleeves", drawn_image("square")),
    ProductInput("", drawn_image("circle", "red", (30, 90))),  # no title
    ProductInput("Leather strap watch", None),  # no image
    ProductInput("   ", None),  # neither
]


@pytest.mark.parametrize("fusion", ["attention", "concat", "text", "image"])
def test_predict_shapes_and_probabilities(tmp_path, fusion):
    predictor = Predictor.load(
        build_random_checkpoint(tmp_path, LABELS, fusion=fusion), device="cpu"
    )
    predictions = predictor.predict(ITEMS, top_k=2, batch_size=3)
    assert len(predictions) == len(ITEMS)
    for p in predictions:
        assert isinstance(p, Prediction) and len(p.labels) == 2
        assert {s.label for s in p.labels} <= set(LABELS)
        assert p.labels[0].score >= p.labels[1].score > 0
        assert all(math.isfinite(s.score) for s in p.labels)
        assert p.auto_accept == (p.top.score >= 0.5)
    full = predictor.predict(ITEMS[:1], top_k=10)[0]
    assert len(full.labels) == len(LABELS)
    assert sum(s.score for s in full.labels) == pytest.approx(1.0, abs=1e-5)


def test_batching_does_not_change_results(tiny_checkpoint):
    predictor = Predictor.load(tiny_checkpoint, device="cpu")
    one_by_one = [predictor.predict([item])[0] for item in ITEMS]
    batched = predictor.predict(ITEMS, batch_size=32)
    for a, b in zip(one_by_one, batched, strict=True):
        assert [s.label for s in a.labels] == [s.label for s in b.labels]
        for x, y in zip(a.labels, b.labels, strict=True):
            assert x.score == pytest.approx(y.score, abs=1e-5)


def test_bad_items_get_clear_errors(tiny_checkpoint):
    predictor = Predictor.load(tiny_checkpoint, device="cpu")
    with pytest.raises(TypeError, match="item 1: expected ProductInput"):
        predictor.predict([ProductInput("ok"), "a title"])
    with pytest.raises(TypeError, match="image must be a PIL image"):
        predictor.predict([ProductInput("ok", image=b"bytes")])


def _model_inputs(batch=3, length=6, text_dim=16, channels=8):
    generator = torch.Generator().manual_seed(1)
    text = torch.randn(batch, length, text_dim, generator=generator)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[1, 3:] = False  # a short title
    mask[2] = False  # an empty title
    image = torch.randn(batch, channels, 7, 7, generator=generator)
    present = torch.tensor([True, False, True])
    return text, mask, image, present


@pytest.mark.parametrize("fusion", ["attention", "concat", "text", "image"])
def test_padding_is_never_attended_and_no_nan(fusion):
    torch.manual_seed(0)
    model = FusionModel(tiny_config(len(LABELS), fusion=fusion)).eval()
    text, mask, image, present = _model_inputs()
    out = model(text, mask, image, present)
    assert out.logits.shape == (3, len(LABELS))
    assert torch.isfinite(out.logits).all()
    # Whatever sits in padded token slots or in the map of an absent image changes nothing.
    noisy_text, noisy_image = text.clone(), image.clone()
    noisy_text[~mask] = 1e4
    noisy_image[~present] = -1e4
    again = model(noisy_text, mask, noisy_image, present)
    torch.testing.assert_close(out.logits, again.logits)
    if fusion == "attention":
        weights = out.pool_weights  # (B, 1 + T + 1 + 49)
        assert weights.shape == (3, 1 + 6 + 1 + 49)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3))
        assert (weights[1, 1 + 3 : 1 + 6] == 0).all()  # padded tokens of row 1
        assert (weights[2, 1:7] == 0).all()  # empty title: only the null token
        assert (weights[1, 8:] == 0).all()  # absent image: only the null token


def test_all_missing_modalities_give_finite_gradients():
    torch.manual_seed(0)
    model = FusionModel(tiny_config(len(LABELS))).train()
    text, mask, image, present = _model_inputs()
    mask[:] = False
    present[:] = False
    loss = model(text, mask, image, present).logits.logsumexp(-1).mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("fusion", ["attention", "concat"])
def test_explanation_sums_to_one(tmp_path, fusion):
    predictor = Predictor.load(
        build_random_checkpoint(tmp_path, LABELS, fusion=fusion), device="cpu"
    )
    full = predictor.explain(ITEMS[0])
    assert isinstance(full, Explanation)
    assert [w for w, _ in full.tokens] == ["Navy", "cotton", "shirt", "with", "long", "sleeves"]
    assert sum(w for _, w in full.tokens) == pytest.approx(1.0)
    assert len(full.regions) == 7 and all(len(row) == 7 for row in full.regions)
    assert sum(map(sum, full.regions)) == pytest.approx(1.0, abs=1e-5)
    assert sum(full.modality_weight.values()) == pytest.approx(1.0)
    assert full.prediction.labels == predictor.predict([ITEMS[0]])[0].labels

    no_title = predictor.explain(ITEMS[1])
    assert no_title.tokens == () and no_title.modality_weight["text"] == 0
    assert sum(map(sum, no_title.regions)) == pytest.approx(1.0, abs=1e-5)

    no_image = predictor.explain(ITEMS[2])
    assert sum(map(sum, no_image.regions)) == 0 and no_image.modality_weight["image"] == 0
    assert sum(w for _, w in no_image.tokens) == pytest.approx(1.0)


@pytest.mark.parametrize("fusion", ["attention", "concat"])
def test_explain_many_matches_one_at_a_time(tmp_path, fusion):
    # Mixed lengths in one batch: the short rows are padded to the long title's length, so
    # reading the image part at the wrong offset would show up as a mismatch here.
    predictor = Predictor.load(
        build_random_checkpoint(tmp_path, LABELS, fusion=fusion), device="cpu"
    )
    items = [
        ProductInput(" ".join(["extra long navy cotton shirt"] * 8), drawn_image("square")),
        ProductInput("", drawn_image("triangle", "green")),
        ProductInput("Leather strap watch", None),
        ProductInput("Red shoes", drawn_image("circle", "red", (30, 90))),
    ]
    batched = predictor.explain_many(items, batch_size=len(items))
    assert len(batched) == len(items)
    for item, many in zip(items, batched, strict=True):
        one = predictor.explain(item)
        assert [w for w, _ in many.tokens] == [w for w, _ in one.tokens]
        assert torch.allclose(
            torch.tensor([w for _, w in many.tokens]),
            torch.tensor([w for _, w in one.tokens]),
            atol=1e-5,
        )
        assert torch.allclose(torch.tensor(many.regions), torch.tensor(one.regions), atol=1e-5)
        assert many.modality_weight == pytest.approx(one.modality_weight, abs=1e-5)
        assert [ls.label for ls in many.prediction.labels] == [
            ls.label for ls in one.prediction.labels
        ]
        assert [ls.score for ls in many.prediction.labels] == pytest.approx(
            [ls.score for ls in one.prediction.labels], abs=1e-5
        )
        if item.image is not None:
            assert sum(map(sum, many.regions)) == pytest.approx(1.0, abs=1e-5)
        else:
            assert sum(map(sum, many.regions)) == 0
        if item.title.strip():
            assert sum(w for _, w in many.tokens) == pytest.approx(1.0, abs=1e-5)
        else:
            assert many.tokens == ()
    # Batches smaller than the list give the same explanations as one batch.
    split = predictor.explain_many(items, batch_size=3)
    for a, b in zip(split, batched, strict=True):
        assert torch.allclose(torch.tensor(a.regions), torch.tensor(b.regions), atol=1e-5)


def test_a_title_only_change_skips_the_image_encoder(tiny_checkpoint, monkeypatch):
    predictor = Predictor.load(tiny_checkpoint, device="cpu")
    photo = drawn_image("square")
    calls = []
    real = predictor.image_encoder.forward_pixels

    def counting(pixels):
        calls.append(pixels.shape[0])
        return real(pixels)

    monkeypatch.setattr(predictor.image_encoder, "forward_pixels", counting)
    first = predictor.predict([ProductInput("Navy shirt", photo)])[0]
    again = predictor.predict([ProductInput("Navy shirt", photo)])[0]
    predictor.predict([ProductInput("Navy shirt, long sleeves", photo)])
    assert calls == [1]
    assert again == first
    predictor.clear_image_cache()
    predictor.predict([ProductInput("Navy shirt", photo)])
    assert calls == [1, 1]


def test_photos_go_through_the_image_encoder_in_small_batches(tiny_checkpoint, monkeypatch):
    predictor = Predictor.load(tiny_checkpoint, device="cpu")
    predictor.image_batch_size = 3
    predictor.image_cache_size = 0
    calls = []
    real = predictor.image_encoder.forward_pixels
    monkeypatch.setattr(
        predictor.image_encoder, "forward_pixels", lambda p: calls.append(p.shape[0]) or real(p)
    )
    items = [ProductInput(f"item {n}", drawn_image("circle", size=(20 + n, 30))) for n in range(7)]
    batched = predictor.predict(items, batch_size=7)
    assert calls == [3, 3, 1]
    assert [p.top.label for p in batched] == [predictor.predict([i])[0].top.label for i in items]


def test_the_image_tail_runs_once_per_batch_for_the_prediction_and_the_verdict(tiny_checkpoint):
    """The out-of-taxonomy verdict's title-only and image-only passes reuse the batch's tail
    output; a changed input, training mode or autograd always recompute it."""
    import torch

    from prodcat_django.ml.model import ImageTail

    tail = ImageTail({"kind": "tiny-random", "channels": 4, "out_channels": 3}, pretrained=False)
    tail.eval()
    calls = []
    tail.conv_head.register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(2, 4, 7, 7)
    with torch.inference_mode():
        first = tail(x)
        assert tail(x) is first and len(calls) == 1
        assert not torch.equal(tail(torch.randn(2, 4, 7, 7)), first) and len(calls) == 2
    y = torch.randn(2, 4, 7, 7)
    with torch.no_grad():
        before = tail(y)
        y.mul_(2)  # in place: the version counter moves
        assert not torch.equal(tail(y), before) and len(calls) == 4
    tail(y)  # autograd on: never memoised
    tail.train()
    with torch.no_grad():
        tail(y)
    assert len(calls) == 6
