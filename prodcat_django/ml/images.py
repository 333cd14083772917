"""Image decoding and resizing with Pillow only (no torch), safe for the web process.

Decoding is the first thing hostile input reaches, so :func:`load_image` accepts only the
formats in :func:`allowed_formats`, turns *every* decoder failure into
:class:`InvalidImageError` (Pillow raises ``ValueError``, ``OSError``, ``SyntaxError``,
``struct.error``, ``EOFError``... depending on the plugin and the damage), and can decode a
photo already reduced (``reduce_to``) so a batch of 12-48 MP phone photos never sits in memory
at full size.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from functools import cache
from pathlib import Path
from typing import BinaryIO

from PIL import ExifTags, Image, features

__all__ = [
    "DECODE_SIZE",
    "ImageTooLargeError",
    "InvalidImageError",
    "allowed_formats",
    "load_image",
    "to_square",
]

#: Formats every install decodes (Pillow's names; JPEG covers the multi-picture MPO files some
#: phones write).
BASE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP")

#: The longest side the worker decodes photos to (the encoders take 224 or less): enough for a
#: clean bicubic step down to the model's input, small enough that a batch stays a few MB.
DECODE_SIZE = 512


#: EXIF orientation -> the transpose that makes the photo upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class InvalidImageError(ValueError):
    """The data is not a decodable image of an allowed format, or is too large to decode."""


class ImageTooLargeError(InvalidImageError):
    """The image has more pixels than allowed even at the reduced size it could be decoded at.

    A caller that has other input (the product's title) may go on without the photo.
    """


@cache
def allowed_formats() -> tuple[str, ...]:
    """The Pillow format names :func:`load_image` accepts in this process.

    JPEG, PNG, WebP, GIF, TIFF and BMP always; AVIF where Pillow was built with libavif; HEIC
    and HEIF (what phones shoot) where ``pillow-heif`` is installed.
    """
    formats = list(BASE_FORMATS)
    if features.check("avif"):
        formats.append("AVIF")
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        pass
    else:
        register_heif_opener()
        formats.append("HEIF")
    return tuple(formats)


def load_image(
    data: bytes | str | Path | BinaryIO,
    *,
    max_pixels: int = 40_000_000,
    reduce_to: int | None = None,
) -> Image.Image:
    """Decode ``data`` (bytes, a path or a binary file) into an RGB image.

    Only :func:`allowed_formats` are opened; anything else, and every decoder error, raises
    :class:`InvalidImageError` with a readable message. EXIF orientation is applied so phone
    photos come out upright; transparent pixels go on white.

    ``reduce_to``: the longest side the caller needs. The image is then decoded at a reduced
    size whose longest side is at least that (JPEG decodes at 1/2, 1/4 or 1/8 scale through
    ``Image.draft``, so a large photo's full-size pixels never exist in memory; other formats
    are shrunk with ``Image.reduce`` right after decoding). ``None`` decodes at full size.

    ``max_pixels`` is checked before any pixel is decoded, against the size the image will be
    decoded at; above it :class:`ImageTooLargeError` is raised (decompression bombs).
    """
    if isinstance(data, str | os.PathLike):
        source = f"file {Path(data).name!r}"
        try:
            data = Path(data).read_bytes()
        except OSError as exc:
            raise InvalidImageError(f"cannot read image {source}: {exc.strerror or exc}") from exc
    elif isinstance(data, bytes | bytearray | memoryview):
        source = f"{len(data)} bytes"
    else:
        source = "the uploaded file"
        data = data.read()
    if not data:
        raise InvalidImageError(f"cannot decode image from {source}: it is empty")
    formats = allowed_formats()
    try:
        with warnings.catch_warnings():
            # Our own pixel limit gives the readable error; silence Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Damaged files make plugins warn as well as fail; the error says what matters.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            image = Image.open(io.BytesIO(data), formats=formats)
            if reduce_to:
                _draft(image, reduce_to)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"image from {source} is {width}x{height} = {width * height:,} pixels, "
                    f"more than the limit of {max_pixels:,}"
                )
            # Read before reducing: a reduced copy no longer carries the file's EXIF.
            orientation = image.getexif().get(ExifTags.Base.Orientation)
            image.load()
            if reduce_to:
                image = _reduce(image, reduce_to)
            if orientation in _UPRIGHT:
                image = image.transpose(_UPRIGHT[orientation])
            return _to_rgb(image)
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"cannot decode image from {source}: {exc}") from exc
    except Image.UnidentifiedImageError:
        raise InvalidImageError(
            f"cannot decode image from {source}: not an image in an accepted format "
            f"({', '.join(_display_formats(formats))})"
        ) from None
    except Exception as exc:  # any decoder failure is bad input, not a crash
        detail = str(exc) or type(exc).__name__
        raise InvalidImageError(f"cannot decode image from {source}: {detail}") from exc


def _draft(image: Image.Image, longest: int) -> None:
    """Ask the JPEG decoder for a 1/2, 1/4 or 1/8 scale whose longest side stays >= ``longest``.

    A no-op for formats without draft support.
    """
    width, height = image.size
    if max(width, height) <= longest:
        return
    scale = longest / max(width, height)
    # draft() keeps both sides at least the requested ones.
    image.draft(None, _at_least(width, height, scale))


def _at_least(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _reduce(image: Image.Image, longest: int) -> Image.Image:
    factor = max(image.size) // longest
    if factor < 2:
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.reduce(factor)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "P", "PA") and (
        image.mode != "P" or "transparency" in image.info
    ):
        # Transparent product cut-outs go on white, as shops display them.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _display_formats(formats: tuple[str, ...]) -> list[str]:
    return [{"HEIF": "HEIC/HEIF", "WEBP": "WebP"}.get(f, f) for f in formats]


def to_square(
    image: Image.Image, size: int, fill: tuple[int, int, int] = (255, 255, 255)
) -> Image.Image:
    """Resize keeping the aspect ratio and centre on a ``size`` x ``size`` canvas of ``fill``.

    Product photos are shot on white, so letterboxing on white keeps the shapes undistorted.
    """
    image = image.convert("RGB")
    if image.size == (size, size):
        return image
    scale = size / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resized = image.resize(new, Image.Resampling.BICUBIC)
    if new == (size, size):
        return resized
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(resized, ((size - new[0]) // 2, (size - new[1]) // 2))
    return canvas
