"""Fingerprints of a product's classifier inputs: a new suggestion only when they change.

``sha256`` over a versioned encoding of the normalised title (Unicode NFC, whitespace runs
collapsed, stripped; case kept) and the raw bytes of the image file, read through the field's
storage in chunks. A product without an image, and one whose image file is missing from the
storage, get the "no image" encoding: the worker cannot read a missing file either, and the
suggestion is redone once a readable file is saved. Cheap, and never imports torch.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from typing import IO, TYPE_CHECKING, Any

from prodcat_django.registry import ProductSpec, get_spec

if TYPE_CHECKING:
    from django.db import models

logger = logging.getLogger(__name__)

#: Bump when the encoding changes: every product then counts as changed.
FINGERPRINT_VERSION = 1
_CHUNK = 1 << 20
_WHITESPACE = re.compile(r"\s+")


def normalize_title(title: str | None) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", title or "")).strip()


def compute_fingerprint(title: str | None, image: bytes | IO[bytes] | None) -> str:
    """Hex sha256 of ``title`` and ``image`` (bytes, a binary file object, or None)."""
    digest = hashlib.sha256()
    encoded = normalize_title(title).encode("utf-8")
    digest.update(b"prodcat-fingerprint-v%d\0" % FINGERPRINT_VERSION)
    digest.update(b"title:%d:" % len(encoded) + encoded)
    if image is None:
        digest.update(b"\0image:none")
    else:
        digest.update(b"\0image:")
        if isinstance(image, bytes | bytearray | memoryview):
            digest.update(image)
        else:
            while chunk := image.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def product_fingerprint(product: models.Model, spec: ProductSpec | None = None) -> str:
    """The fingerprint of a registered product's current title and image file."""
    if spec is None:
        spec = get_spec(product)
    field_file = spec.get_image(product)
    title = spec.get_title(product)
    if not field_file:
        return compute_fingerprint(title, None)
    try:
        with field_file.storage.open(field_file.name, "rb") as fh:
            return compute_fingerprint(title, fh)
    except (FileNotFoundError, OSError) as exc:
        logger.warning(
            "prodcat: image %r of %s pk=%s is unreadable (%s); fingerprinting it as no image",
            field_file.name,
            spec.label,
            product.pk,
            exc,
        )
        return compute_fingerprint(title, None)


class ImageFileTooLarge(Exception):
    """The image file is larger than the caller's ``max_bytes``; nothing past it was read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the photo file is {size:,} bytes or more, the limit is {limit:,}")
        self.size, self.limit = size, limit


def read_image_bytes(
    product: Any, spec: ProductSpec, *, max_bytes: int | None = None
) -> bytes | None:
    """The image file's bytes through its storage, or None when there is no image.

    Reads at most ``max_bytes`` + 1 bytes and raises :class:`ImageFileTooLarge` past the limit,
    so a huge file never lands in the worker's memory.
    """
    field_file = spec.get_image(product)
    if not field_file:
        return None
    with field_file.storage.open(field_file.name, "rb") as fh:
        if max_bytes is None:
            return fh.read()
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageFileTooLarge(len(data), max_bytes)
    return data
