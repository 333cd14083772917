"""Fingerprints of a product's classifier inputs: a new suggestion only when they change.

``sha256`` over a versioned encoding of the normalised text (the adapter's ``get_text``:
Unicode NFC, whitespace runs collapsed, stripped; case kept) and the image: the raw bytes of a
stored file, read through its storage in chunks, or, for an image at a URL, only its identity
(URL, ETag, Last-Modified): the web process never downloads it. A product without an image,
and one whose image file is missing from the storage, get the "no image" encoding: the worker
cannot read a missing file either, and the suggestion is redone once a readable file is saved.
Cheap, and never imports torch.

A stored file whose name, size (and, on a local filesystem, modification time) this process
fingerprinted already, with the same title, is not read again: :func:`product_fingerprint`
answers from a small bounded cache, so a save that changes nothing costs a ``stat``, not a read
and hash of the photo (storages give new uploads new names, so a new photo is a new name).

The fingerprint of each product's current suggestion, as this process last read or wrote it, is
kept in a second bounded cache (:func:`known_current`): an unchanged save of a product whose
current fingerprint is known asks the database nothing (see
:func:`prodcat_django.services.unchanged_since_known`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from prodcat_django.lru import BoundedLRU
from prodcat_django.registry import get_adapter

if TYPE_CHECKING:
    from django.db import models

    from prodcat_django.adapters import ImageSource, ProductAdapter

logger = logging.getLogger(__name__)

#: Bump when the encoding changes: every product then counts as changed.
FINGERPRINT_VERSION = 1
_CHUNK = 1 << 20
_WHITESPACE = re.compile(r"\s+")
#: Fingerprints of stored files by (title, file identity): see :func:`product_fingerprint`.
_known: BoundedLRU[tuple[Any, ...], str] = BoundedLRU(4096)
#: (content type id, object id) -> the fingerprint of its current suggestion, as this process
#: last read or committed it: see :func:`known_current`.
_current: BoundedLRU[tuple[int, str], str] = BoundedLRU(10_000)


def normalize_title(title: str | None) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", title or "")).strip()


def compute_fingerprint(
    title: str | None, image: bytes | IO[bytes] | None, *, image_identity: str | None = None
) -> str:
    """Hex sha256 of ``title`` and ``image`` (bytes, a binary file object, or None), or of
    ``title`` and ``image_identity`` (a remote image's URL/ETag/Last-Modified)."""
    digest = hashlib.sha256()
    encoded = normalize_title(title).encode("utf-8")
    digest.update(b"prodcat-fingerprint-v%d\0" % FINGERPRINT_VERSION)
    digest.update(b"title:%d:" % len(encoded) + encoded)
    if image_identity is not None:
        # Not a prefix of the bytes encoding below ("image-url:" vs "image:").
        ref = image_identity.encode("utf-8")
        digest.update(b"\0image-url:%d:" % len(ref) + ref)
    elif image is None:
        digest.update(b"\0image:none")
    else:
        digest.update(b"\0image:")
        if isinstance(image, bytes | bytearray | memoryview):
            digest.update(image)
        else:
            while chunk := image.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def fingerprint_of(text: str, source: ImageSource | None, data: bytes | None = None) -> str:
    """The fingerprint of ``text`` and an image ``source``; ``data`` are its bytes when the
    caller read them already (the worker), else a local image is read here."""
    if source is None:
        return compute_fingerprint(text, None)
    if source.is_remote:
        return compute_fingerprint(text, None, image_identity=source.identity())
    if data is not None:
        return compute_fingerprint(text, data)
    with source.open() as fh:
        return compute_fingerprint(text, fh)


def product_fingerprint(product: models.Model, adapter: ProductAdapter | None = None) -> str:
    """The fingerprint of a registered product's current text and image."""
    if adapter is None:
        adapter = get_adapter(product)
    text = adapter.get_text(product)
    source = adapter.get_image(product)
    try:
        key = _file_key(text, source)
        known = _known.get(key) if key is not None else None
        if known is not None:
            return known
        fingerprint = fingerprint_of(text, source)
        if key is not None:
            _known.put(key, fingerprint)
        return fingerprint
    except (FileNotFoundError, OSError) as exc:
        logger.warning(
            "prodcat: image %r of %s pk=%s is unreadable (%s); fingerprinting it as no image",
            source.describe() if source is not None else None,
            adapter.label,
            product.pk,
            exc,
        )
        return compute_fingerprint(text, None)


def _file_key(text: str, source: ImageSource | None) -> tuple[Any, ...] | None:
    """What identifies a stored, committed file without reading it: its storage, name and size
    (plus the modification time where the storage is a local filesystem: one ``stat``). None
    for anything else (no image, a URL, bytes, a file not saved to its storage yet)."""
    field_file = getattr(source, "field_file", None)
    if field_file is None or not getattr(field_file, "_committed", False) or not field_file.name:
        return None
    storage, name = field_file.storage, str(field_file.name)
    try:
        path = storage.path(name)
    except NotImplementedError:  # a remote storage: its size() is one metadata request
        where = (
            type(storage).__module__,
            type(storage).__qualname__,
            getattr(storage, "location", ""),
        )
        return (normalize_title(text), where, name, storage.size(name))
    stat = os.stat(path)
    return (normalize_title(text), path, stat.st_size, stat.st_mtime_ns)


def clear_known_files() -> None:
    """Forget the cached file fingerprints (tests)."""
    _known.clear()


def known_current(content_type_id: int, object_id: Any) -> str | None:
    """The fingerprint of the product's current suggestion as this process last read or
    committed it, or None when it does not know. Another process's changes are not seen: the
    callers use it only for an instance unchanged since it was loaded."""
    return _current.get((content_type_id, str(object_id)))


def remember_current(content_type_id: int, object_id: Any, fingerprint: str) -> None:
    """Record a current suggestion's fingerprint (call it once the row is committed)."""
    if not fingerprint:
        return  # a bulk-queued row: the worker fingerprints it, so nothing is known yet
    _current.put((content_type_id, str(object_id)), fingerprint)


def forget_current(content_type_id: int, object_ids: Iterable[Any]) -> None:
    """Forget what :func:`known_current` knows of these objects (before their current
    suggestion is written: a rolled-back write then leaves nothing behind)."""
    _current.discard((content_type_id, str(object_id)) for object_id in object_ids)


def forget_all_current() -> None:
    """Forget every known current fingerprint (tests; a rewound database)."""
    _current.clear()


class ImageFileTooLarge(Exception):
    """The image file is larger than the caller's ``max_bytes``; nothing past it was read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the photo file is {size:,} bytes or more, the limit is {limit:,}")
        self.size, self.limit = size, limit


def read_image_bytes(
    product: Any, adapter: ProductAdapter, *, max_bytes: int | None = None
) -> bytes | None:
    """The product's image bytes, or None when it has no image: a storage read (at most
    ``max_bytes`` + 1 bytes, :class:`ImageFileTooLarge` past the limit, so a huge file never
    lands in the worker's memory), or the worker's guarded fetch of a URL (capped at
    ``max_bytes``, default ``MAX_UPLOAD_BYTES``). ``OSError`` when it cannot be read."""
    source = adapter.get_image(product)
    if source is None:
        return None
    if source.is_remote:
        from prodcat_django.conf import prodcat_settings

        limit = int(prodcat_settings.MAX_UPLOAD_BYTES if max_bytes is None else max_bytes)
        return source.read(max_bytes=limit)
    with source.open() as fh:
        if max_bytes is None:
            return fh.read()
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageFileTooLarge(len(data), max_bytes)
    return data
