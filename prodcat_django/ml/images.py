"""Image decoding and resizing with Pillow only (no torch), safe for the web process."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["InvalidImageError", "load_image", "to_square"]


class InvalidImageError(ValueError):
    """The data is not a decodable image, or it is too large to decode safely."""


def load_image(data: bytes | str | Path | BinaryIO, *, max_pixels: int = 40_000_000) -> Image.Image:
    """Decode ``data`` (bytes, a path or a binary file) into an RGB image.

    EXIF orientation is applied so phone photos come out upright. Images above ``max_pixels``
    are refused before their pixels are decoded (decompression bombs).
    """
    if isinstance(data, str | os.PathLike):
        source = f"file {os.fspath(data)!r}"
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
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below gives the readable error; silence Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidImageError(
                    f"image from {source} is {width}x{height} = {width * height:,} pixels, "
                    f"more than the limit of {max_pixels:,}"
                )
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "P") and (
                image.mode != "P" or "transparency" in image.info
            ):
                # Transparent product cut-outs go on white, as shops display them.
                rgba = image.convert("RGBA")
                canvas = Image.new("RGB", rgba.size, (255, 255, 255))
                canvas.paste(rgba, mask=rgba.getchannel("A"))
                return canvas
            return image.convert("RGB")
    except InvalidImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        raise InvalidImageError(f"cannot decode image from {source}: {exc}") from exc


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
