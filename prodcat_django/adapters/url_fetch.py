"""The worker's download of a product image from a URL, with the limits a server-side fetch of
a shop-supplied address needs (it runs on the worker only, never in the web process):

- schemes: ``PRODCAT["IMAGE_URL_SCHEMES"]`` (default ``("https",)``);
- hosts: ``PRODCAT["IMAGE_URL_HOSTS"]``: None (default) allows any host whose addresses are
  all public; a list allows only those hosts (``"cdn.example.com"`` exactly, ``".example.com"``
  for it and its subdomains). A host named exactly in the list (``"127.0.0.1"``, an intranet
  name) may resolve to a private address; every other host must resolve to public ones only
  (no loopback, private, link-local, multicast or reserved address);
- the connection goes to the address that was checked (no second DNS lookup to rebind);
- redirects (at most ``IMAGE_URL_MAX_REDIRECTS``) are followed by hand and each target is
  checked by the same rules, so a public URL cannot redirect to a private address;
- ``IMAGE_URL_TIMEOUT`` seconds for the whole download, and at most ``max_bytes`` (default
  ``MAX_UPLOAD_BYTES``) read, checked against Content-Length first and while reading.

The bytes are decoded by :func:`prodcat_django.ml.images.load_image` with the same
``MAX_IMAGE_PIXELS`` limit as uploads. Every refusal raises :class:`ImageFetchError` (an
``OSError``), which the worker records on the suggestion as an unreadable image.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from urllib.parse import urljoin, urlsplit

from prodcat_django.conf import prodcat_settings

_CHUNK = 64 * 1024


class ImageFetchError(OSError):
    """The image at a URL could not be fetched, or was refused by the limits."""


def fetch_image(url: str, *, max_bytes: int | None = None) -> bytes:
    """The bytes at ``url``, within the limits described in the module docstring."""
    limit = int(prodcat_settings.MAX_UPLOAD_BYTES if max_bytes is None else max_bytes)
    timeout = float(prodcat_settings.IMAGE_URL_TIMEOUT)
    deadline = time.monotonic() + timeout
    redirects = int(prodcat_settings.IMAGE_URL_MAX_REDIRECTS)
    for _ in range(redirects + 1):
        response, conn = _get(url, deadline)
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise ImageFetchError(f"{url}: redirect without a Location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise ImageFetchError(f"{url}: HTTP {response.status} {response.reason}")
            return _read_body(url, response, limit, deadline)
        finally:
            conn.close()
    raise ImageFetchError(f"{url}: more than {redirects} redirects")


def _get(url: str, deadline: float) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    schemes = {s.lower() for s in prodcat_settings.IMAGE_URL_SCHEMES}
    if scheme not in schemes:
        allowed = ", ".join(sorted(schemes)) or "none"
        raise ImageFetchError(
            f"{url}: the scheme {scheme or '(none)'!r} is not allowed ({allowed})"
        )
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise ImageFetchError(f"{url}: no host")
    explicitly_allowed = _check_host(url, host)
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ImageFetchError(f"{url}: bad port") from None
    address = _resolve(url, host, port, allow_private=explicitly_allowed)
    remaining = _remaining(url, deadline)
    if scheme == "https":
        conn: http.client.HTTPConnection = _PinnedHTTPSConnection(
            host, port, address, timeout=remaining, context=ssl.create_default_context()
        )
    else:
        conn = _PinnedHTTPConnection(host, port, address, timeout=remaining)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    try:
        conn.request(
            "GET",
            path,
            headers={"User-Agent": "prodcat-django", "Accept": "image/*", "Connection": "close"},
        )
        return conn.getresponse(), conn
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise ImageFetchError(f"{url}: {type(exc).__name__}: {exc}") from None


def _check_host(url: str, host: str) -> bool:
    """Refuse a host outside ``IMAGE_URL_HOSTS``; True when the host is named exactly there
    (then it may have a private address)."""
    allowed = prodcat_settings.IMAGE_URL_HOSTS
    if allowed is None:
        return False
    patterns = [str(p).lower().rstrip(".") for p in allowed]
    if host in patterns:
        return True
    if any(p.startswith(".") and (host == p[1:] or host.endswith(p)) for p in patterns):
        return False
    raise ImageFetchError(f"{url}: the host {host!r} is not in PRODCAT['IMAGE_URL_HOSTS']")


def _resolve(url: str, host: str, port: int, *, allow_private: bool) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ImageFetchError(f"{url}: cannot resolve {host!r}: {exc}") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise ImageFetchError(f"{url}: {host!r} has no address")
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            mapped = getattr(ip, "ipv4_mapped", None)
            if not (mapped or ip).is_global:
                raise ImageFetchError(
                    f"{url}: {host!r} resolves to the non-public address {address}; name the "
                    "host in PRODCAT['IMAGE_URL_HOSTS'] to allow it"
                )
    return addresses[0]


def _remaining(url: str, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ImageFetchError(f"{url}: timed out after {prodcat_settings.IMAGE_URL_TIMEOUT}s")
    return left


def _read_body(url: str, response: http.client.HTTPResponse, limit: int, deadline: float) -> bytes:
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise ImageFetchError(f"{url}: the image is {length} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        _remaining(url, deadline)
        try:
            chunk = response.read(_CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            raise ImageFetchError(f"{url}: {type(exc).__name__}: {exc}") from None
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ImageFetchError(f"{url}: the image is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, not to a fresh lookup of the host."""

    def __init__(self, host: str, port: int, address: str, **kwargs: object) -> None:
        super().__init__(host, port, **kwargs)  # type: ignore[arg-type]
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, **kwargs: object) -> None:
        super().__init__(host, port, **kwargs)  # type: ignore[arg-type]
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # SNI and certificate checks use the host name of the URL.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
