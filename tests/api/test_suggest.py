"""``POST suggest/``: authentication, permissions, validation and the tiny model's answers."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from prodcat_django.ml.manifest import read_checkpoint
from tests.api.conftest import client_for
from tests.conftest import TEST_LABELS
from tests.shop_data import png_bytes

pytestmark = pytest.mark.django_db

URL = reverse("prodcat_api:suggest")
REPO_ROOT = Path(__file__).resolve().parents[2]


def upload(data: bytes, name: str = "photo.png", content_type: str = "image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def test_anonymous_gets_401_with_a_challenge(checkpoint) -> None:
    response = client_for(None).post(URL, {"title": "Running shoes"}, format="multipart")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


def test_user_without_view_permission_gets_403(checkpoint, nobody) -> None:
    response = client_for(nobody).post(URL, {"title": "Running shoes"}, format="multipart")
    assert response.status_code == 403
    assert "prodcat_django.view_categorysuggestion" in response.json()["detail"]


def test_basic_auth_credentials_work(checkpoint, viewer) -> None:
    client = client_for(None)
    token = base64.b64encode(b"viewer:pw").decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    response = client.post(URL, {"title": "Running shoes"}, format="multipart")
    assert response.status_code == 200, response.content


def test_title_only_returns_top_k_labels_with_model_and_threshold(checkpoint, viewer) -> None:
    response = client_for(viewer).post(URL, {"title": "Running shoes"}, format="multipart")

    assert response.status_code == 200, response.content
    body = response.json()
    info = read_checkpoint(checkpoint)
    assert body["model"] == {"name": info.name, "version": info.version}
    assert body["threshold"] == info.threshold
    assert len(body["labels"]) == 3  # PRODCAT TOP_K default
    scores = [item["score"] for item in body["labels"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert {item["label"] for item in body["labels"]} <= set(TEST_LABELS)
    assert body["auto_accept"] == (info.threshold is not None and scores[0] >= info.threshold)


def test_image_only_and_both_inputs(checkpoint, viewer) -> None:
    client = client_for(viewer)
    image_only = client.post(URL, {"image": upload(png_bytes())}, format="multipart")
    both = client.post(
        URL, {"title": "Wall clock", "image": upload(png_bytes("teal"))}, format="multipart"
    )
    assert image_only.status_code == 200, image_only.content
    assert both.status_code == 200, both.content
    assert len(image_only.json()["labels"]) == 3


def test_top_k_covering_every_label_gives_a_distribution(checkpoint, viewer) -> None:
    response = client_for(viewer).post(
        URL, {"title": "Wall clock", "top_k": len(TEST_LABELS)}, format="multipart"
    )
    assert response.status_code == 200, response.content
    labels = response.json()["labels"]
    assert sorted(item["label"] for item in labels) == sorted(TEST_LABELS)
    assert sum(item["score"] for item in labels) == pytest.approx(1.0, abs=1e-4)


def test_no_title_and_no_image_is_a_field_error(checkpoint, viewer) -> None:
    for data in ({}, {"title": "   "}, {"top_k": 2}):
        response = client_for(viewer).post(URL, data, format="multipart")
        assert response.status_code == 400
        assert "title" in response.json(), response.json()


@pytest.mark.parametrize("top_k", ["0", "5", "-1", "three"])
def test_bad_top_k_is_a_field_error(checkpoint, viewer, top_k: str) -> None:
    response = client_for(viewer).post(URL, {"title": "Shoes", "top_k": top_k}, format="multipart")
    assert response.status_code == 400
    assert list(response.json()) == ["top_k"]


def test_oversized_image_is_413_saying_the_limit(prodcat_setting: Callable, viewer) -> None:
    prodcat_setting(MAX_UPLOAD_BYTES=1000)
    data = png_bytes(size=(40, 40), fmt="BMP")  # uncompressed: 4,854 bytes
    response = client_for(viewer).post(URL, {"image": upload(data, "a.bmp")}, format="multipart")
    assert response.status_code == 413
    message = response.json()["image"][0]
    assert f"{len(data):,} bytes" in message and "1,000 bytes" in message


def test_oversized_body_is_refused_from_its_content_length(
    prodcat_setting: Callable, viewer
) -> None:
    prodcat_setting(MAX_UPLOAD_BYTES=1000)
    data = b"\0" * 200_000  # never decoded: the Content-Length alone is over the limit
    for user in (viewer, None):  # refused before authentication reads the body
        response = client_for(user).post(URL, {"image": upload(data)}, format="multipart")
        assert response.status_code == 413
        assert "The request (less form overhead) is" in response.json()["image"][0]


def test_bytes_that_are_not_an_image_are_a_400_saying_so(checkpoint, viewer) -> None:
    response = client_for(viewer).post(
        URL, {"title": "Shoes", "image": upload(b"this is not a picture")}, format="multipart"
    )
    assert response.status_code == 400
    assert "cannot decode" in response.json()["image"][0]


def test_truncated_image_is_a_400(checkpoint, viewer) -> None:
    data = png_bytes(fmt="PNG")[:60]
    response = client_for(viewer).post(URL, {"image": upload(data)}, format="multipart")
    assert response.status_code == 400
    assert "image" in response.json()


def test_too_many_pixels_is_a_400_naming_the_limit(prodcat_setting: Callable, viewer) -> None:
    prodcat_setting(MAX_IMAGE_PIXELS=1000)
    response = client_for(viewer).post(
        URL, {"image": upload(png_bytes(size=(64, 48)))}, format="multipart"
    )
    assert response.status_code == 400
    message = response.json()["image"][0]
    assert "3,072 pixels" in message and "1,000" in message


def test_image_sent_as_text_is_a_400(checkpoint, viewer) -> None:
    response = client_for(viewer).post(URL, {"image": "not-a-file"}, format="multipart")
    assert response.status_code == 400
    assert "image" in response.json()


def test_json_is_not_accepted(checkpoint, viewer) -> None:
    response = client_for(viewer).post(URL, {"title": "Shoes"}, format="json")
    assert response.status_code == 415


def test_importing_the_api_does_not_import_torch() -> None:
    code = (
        "import sys, django; django.setup(); "
        "import prodcat_django.api.urls, prodcat_django.api.views; "
        "from django.urls import reverse; reverse('prodcat_api:suggest'); "
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')); "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_checkpoint_is_a_503_without_server_details(
    prodcat_setting: Callable, viewer, tmp_path: Path, caplog
) -> None:
    from prodcat_django.classifier import clear_cache

    prodcat_setting(CHECKPOINT=str(tmp_path / "nowhere"))
    clear_cache()
    response = client_for(viewer).post(URL, {"title": "Shoes"}, format="multipart")
    clear_cache()
    assert response.status_code == 503
    assert str(tmp_path) not in response.content.decode()  # paths stay in the log
    assert any("cannot load the model" in r.getMessage() for r in caplog.records)


def _hostile_images() -> dict[str, bytes]:
    """Small files that used to escape the decoder as ValueError (a 500), and other damage."""
    import io
    import random
    import struct
    import zlib

    from PIL import Image, PngImagePlugin

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "A" * (2 * PngImagePlugin.MAX_TEXT_CHUNK), zip=True)
    ztxt = io.BytesIO()
    Image.new("RGB", (8, 8)).save(ztxt, format="PNG", pnginfo=info)
    iccp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(iccp, format="PNG", icc_profile=b"\0" * (2 << 20))
    signature = b"\x89PNG\r\n\x1a\n"
    files = {
        "ztxt-bomb": ztxt.getvalue(),
        "iccp-bomb": iccp.getvalue(),
        "truncated-ihdr": signature + chunk(b"IHDR", b"\0\0\0\x08\0") + chunk(b"IEND", b""),
        "pixel-bomb": signature
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 30_000, 30_000, 1, 0, 0, 0, 0))
        + chunk(b"IEND", b""),
        "ppm-not-allowed": b"P6\n4 4\n255\n" + b"\xff" * 48,
    }
    rng = random.Random("prodcat-api-hostile")
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"):
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), "red").save(buffer, format=fmt)
        data = bytearray(buffer.getvalue())
        for _ in range(6):
            data[rng.randrange(8, len(data))] = rng.randrange(256)
        files[f"mutated-{fmt.lower()}"] = bytes(data[: rng.randrange(20, len(data))])
    return files


@pytest.mark.parametrize("name", sorted(_hostile_images()))
def test_hostile_images_get_400_with_the_reason_never_500(checkpoint, viewer, name) -> None:
    data = _hostile_images()[name]
    response = client_for(viewer).post(
        URL, {"title": "Tote", "image": upload(data)}, format="multipart"
    )
    # A mutated file may still decode (then 200); what it must never do is crash the view.
    assert response.status_code in (200, 400), (name, response.status_code, response.content)
    if name in {"ztxt-bomb", "iccp-bomb", "truncated-ihdr", "pixel-bomb", "ppm-not-allowed"}:
        assert response.status_code == 400, response.content
        assert "cannot decode image" in response.json()["image"][0] or "pixels" in str(
            response.json()
        )


def test_explain_returns_words_regions_and_shares_from_the_same_pass(checkpoint, viewer) -> None:
    plain = client_for(viewer).post(
        URL, {"title": "Leather ankle boots", "image": upload(png_bytes())}, format="multipart"
    )
    response = client_for(viewer).post(
        URL,
        {"title": "Leather ankle boots", "image": upload(png_bytes()), "explain": "true"},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert "explanation" not in plain.json()
    assert body["labels"] == plain.json()["labels"]  # the same prediction
    explanation = body["explanation"]
    assert [word for word, _ in explanation["tokens"]] == ["Leather", "ankle", "boots"]
    assert sum(w for _, w in explanation["tokens"]) == pytest.approx(1.0, abs=1e-4)
    assert len(explanation["regions"]) == 7 and all(len(row) == 7 for row in explanation["regions"])
    assert set(explanation["modality_weight"]) == {"text", "image"}


def test_browsable_api_offers_a_file_upload_form(checkpoint, viewer) -> None:
    from django.test import Client

    client = Client()
    client.force_login(viewer)
    html = client.get(URL, HTTP_ACCEPT="text/html").content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'type="file"' in html and 'name="image"' in html
