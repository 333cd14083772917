"""Hostile and damaged images: every decoder failure is an ``InvalidImageError``, never another
exception, and nothing outside the allowed formats is opened.

The fuzz test mutates a small valid file of every accepted format with a seeded generator
(byte flips, overwritten runs, truncation, duplicated and deleted spans), so a failure names a
seed that reproduces it.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from prodcat_django.ml.images import (
    ImageTooLargeError,
    InvalidImageError,
    allowed_formats,
    load_image,
)

#: Mutated files per format (a few hundred decodes of tiny images: about a second in all).
MUTATIONS_PER_FORMAT = 300


def _sample(fmt: str) -> bytes:
    image = Image.new("RGB", (24, 16), (200, 30, 30))
    image.paste((20, 20, 220), (6, 4, 18, 12))
    buffer = io.BytesIO()
    options = {"GIF": {}, "TIFF": {"compression": "tiff_lzw"}}.get(fmt, {})
    if fmt in ("HEIF", "AVIF"):
        options = {"quality": 60}
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _fuzz_formats() -> list[str]:
    return list(allowed_formats())


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        pos = rng.randrange(len(out)) if out else 0
        if kind == 0:  # flip a few bits
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(out))
                out[i] ^= 1 << rng.randrange(8)
        elif kind == 1:  # overwrite a run with random or extreme bytes
            run = bytes(rng.choice((0x00, 0xFF, rng.randrange(256))) for _ in range(16))
            out[pos : pos + len(run)] = run
        elif kind == 2:  # truncate
            del out[max(8, pos) :]
        elif kind == 3:  # duplicate a span
            end = min(len(out), pos + rng.randint(1, 64))
            out[pos:pos] = out[pos:end]
        else:  # delete a span
            del out[pos : pos + rng.randint(1, 32)]
    return bytes(out)


@pytest.mark.parametrize("fmt", _fuzz_formats())
def test_mutated_files_decode_or_raise_invalid_image(fmt):
    original = _sample(fmt)
    assert load_image(original).size == (24, 16)
    rng = random.Random(f"prodcat-fuzz-{fmt}")
    outcomes = {"decoded": 0, "refused": 0}
    for case in range(MUTATIONS_PER_FORMAT):
        data = _mutate(original, rng)
        for reduce_to in (None, 8):
            try:
                image = load_image(data, max_pixels=4_000_000, reduce_to=reduce_to)
            except InvalidImageError as exc:
                assert str(exc), (fmt, case)
                outcomes["refused"] += 1
            except Exception as exc:  # pragma: no cover - the failure this test exists for
                pytest.fail(f"{fmt} mutation {case}: {type(exc).__name__}: {exc}")
            else:
                assert image.mode == "RGB" and image.width >= 1 and image.height >= 1
                outcomes["decoded"] += 1
    assert outcomes["refused"] > 0  # the mutations do damage files


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def test_ztxt_chunk_inflating_past_the_text_limit_is_invalid_image():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "A" * (2 * PngImagePlugin.MAX_TEXT_CHUNK), zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    data = buffer.getvalue()
    assert len(data) < 10_000  # a few KB that inflate to 2 MB
    with pytest.raises(InvalidImageError, match="cannot decode image"):
        load_image(data)


def test_iccp_chunk_inflating_past_the_text_limit_is_invalid_image():
    buffer = io.BytesIO()
    profile = b"\0" * (2 * PngImagePlugin.MAX_TEXT_CHUNK)
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", icc_profile=profile)
    with pytest.raises(InvalidImageError, match="cannot decode image"):
        load_image(buffer.getvalue())


def test_truncated_ihdr_chunk_is_invalid_image():
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", b"\0\0\0\x08\0") + _png_chunk(b"IEND", b"")
    with pytest.raises(InvalidImageError, match="cannot decode image"):
        load_image(data)


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA", "PCX", "EPS"])
def test_formats_outside_the_allowlist_are_refused(fmt):
    buffer = io.BytesIO()
    image = Image.new("RGB", (16, 16), "red")
    if fmt == "EPS":
        buffer.write(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nshowpage\n")
    else:
        image.save(buffer, format=fmt)
    with pytest.raises(InvalidImageError, match="accepted format"):
        load_image(buffer.getvalue())


def test_decompression_bomb_is_too_large_not_a_crash():
    # A header claiming 20,000 x 10,000 pixels: Pillow's own bomb check fires at open.
    header = struct.pack(">IIBBBBB", 20_000, 10_000, 1, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b"")
    for reduce_to in (None, 512):
        with pytest.raises(ImageTooLargeError):
            load_image(data, reduce_to=reduce_to)
