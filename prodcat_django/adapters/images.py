"""What an adapter's ``get_image`` returns: where a product's image is, and how to identify it
cheaply.

- :meth:`ImageSource.from_field`: a ``FileField``/``ImageField`` value (the shop's storage).
  Its fingerprint hashes the file's bytes, read through the storage, as it always did.
- :meth:`ImageSource.from_url`: an image at a URL (a CDN). The web process never downloads
  it: the fingerprint uses the URL and the ETag/Last-Modified the adapter gives, and only the
  worker fetches the bytes, through :func:`prodcat_django.adapters.url_fetch.fetch_image`
  (timeout, size cap, scheme/host allowlist, no private addresses).
- :meth:`ImageSource.from_bytes`: bytes the adapter already has.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True)
class ImageSource:
    """One product image. Build it with a ``from_*`` constructor."""

    field_file: Any = None
    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    data: bytes | None = None

    @classmethod
    def from_field(cls, field_file: Any) -> ImageSource | None:
        """The image of a file field (None when the field is empty)."""
        return cls(field_file=field_file) if field_file else None

    @classmethod
    def from_url(
        cls, url: str | None, *, etag: str | None = None, last_modified: str | None = None
    ) -> ImageSource | None:
        """An image at ``url`` (None when blank); ``etag``/``last_modified`` (as the server
        sent them, when the shop stored them) make a changed image at the same URL count as a
        change."""
        url = (url or "").strip()
        return cls(url=url, etag=etag or None, last_modified=last_modified or None) if url else None

    @classmethod
    def from_bytes(cls, data: bytes | None) -> ImageSource | None:
        return cls(data=bytes(data)) if data else None

    @property
    def is_remote(self) -> bool:
        """True for a URL: identified by :meth:`identity`, fetched by the worker only."""
        return self.url is not None

    def identity(self) -> str:
        """What the fingerprint records for a remote image: URL, ETag and Last-Modified."""
        return "\0".join((self.url or "", self.etag or "", self.last_modified or ""))

    def open(self) -> IO[bytes]:
        """A binary file object over a local image (file field or bytes)."""
        if self.field_file is not None:
            return self.field_file.storage.open(self.field_file.name, "rb")
        if self.data is not None:
            return io.BytesIO(self.data)
        raise ValueError("a remote image has no local file; the worker fetches it")

    def read(self, *, max_bytes: int | None = None) -> bytes:
        """The image's bytes (worker side): the storage, the bytes given, or a guarded fetch
        of the URL (``max_bytes`` caps the download; settings give the other limits)."""
        if self.is_remote:
            from prodcat_django.adapters.url_fetch import fetch_image

            return fetch_image(self.url or "", max_bytes=max_bytes)
        with self.open() as fh:
            return fh.read()

    @property
    def display_url(self) -> str | None:
        """A URL a browser can show (the admin's thumbnails), or None."""
        if self.is_remote:
            return self.url
        if self.field_file is not None:
            try:
                return self.field_file.url
            except (ValueError, NotImplementedError):
                return None
        return None

    def describe(self) -> str:
        """For log lines and errors."""
        if self.is_remote:
            return self.url or ""
        if self.field_file is not None:
            return str(self.field_file.name)
        return f"<{len(self.data or b'')} bytes>"
