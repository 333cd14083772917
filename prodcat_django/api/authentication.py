"""The API's authentication classes, explicit rather than the project's DRF defaults.

Token (only when ``rest_framework.authtoken`` is installed), then HTTP Basic, then the Django
session (with DRF's CSRF check, so a logged-in admin page can call the API). A request with no
credentials gets ``401`` with a ``WWW-Authenticate`` challenge from the first class. Basic
sends the password with every request: serve the API over HTTPS only.

Guessing passwords through Basic (or tokens) is throttled by client address *before* the
credentials are checked: after ``PRODCAT["AUTH_FAILURE_RATE"]`` failed attempts (default
"10/min") a client gets ``429`` with ``Retry-After``, right or wrong credentials alike, until the
window passes. The counts live in the default cache, so several web processes need a shared one
(Redis, Memcached, the database): system check ``prodcat.W011`` says so.
"""

from __future__ import annotations

import time
from typing import Any

from django.apps import apps
from django.core.cache import cache
from drf_spectacular.authentication import BasicScheme
from rest_framework.authentication import (
    BaseAuthentication,
    BasicAuthentication,
    SessionAuthentication,
    TokenAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from prodcat_django.conf import prodcat_settings

_KEY = "prodcat:auth-failures:{ident}:{window}"


class FailedAuthThrottle:
    """Counts failed credential checks per client address in fixed windows of the rate's
    duration (``"10/min"``: 10 per minute)."""

    def __init__(self, request: Request) -> None:
        rate = prodcat_settings.AUTH_FAILURE_RATE
        self.limit, self.duration = (
            SimpleRateThrottle.parse_rate(None, rate) if rate else (None, None)
        )
        # DRF's client address: REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES proxies.
        self.ident = BaseThrottle().get_ident(request)

    def _key(self) -> tuple[str, float]:
        now = time.time()
        window = int(now // self.duration)
        return _KEY.format(ident=self.ident, window=window), (window + 1) * self.duration - now

    def check(self) -> None:
        """429 when this address already failed ``limit`` times in the current window."""
        if self.limit is None:
            return
        key, left = self._key()
        if (cache.get(key) or 0) >= self.limit:
            raise Throttled(
                wait=left,
                detail="Too many failed sign-in attempts from your address; try again later.",
            )

    def failed(self) -> None:
        if self.limit is None:
            return
        key, left = self._key()
        if not cache.add(key, 1, timeout=max(1, int(left) + 1)):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=max(1, int(left) + 1))


class _ThrottledCredentials:
    """Throttle failures of a credentials scheme (``keyword``) before checking them."""

    keyword_: bytes = b""

    def authenticate(self, request: Request) -> Any:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword_:
            return None  # not this scheme: nothing to guess here
        throttle = FailedAuthThrottle(request)
        throttle.check()
        try:
            return super().authenticate(request)  # type: ignore[misc]
        except AuthenticationFailed:
            throttle.failed()
            raise


class ThrottledBasicAuthentication(_ThrottledCredentials, BasicAuthentication):
    keyword_ = b"basic"


class ThrottledTokenAuthentication(_ThrottledCredentials, TokenAuthentication):
    keyword_ = b"token"


class ThrottledBasicScheme(BasicScheme):
    """The OpenAPI security scheme of the throttled Basic class: plain HTTP Basic."""

    target_class = "prodcat_django.api.authentication.ThrottledBasicAuthentication"


def api_authentication_classes() -> list[type[BaseAuthentication]]:
    """Resolved per request, so installing ``rest_framework.authtoken`` needs no other change."""
    classes: list[type[BaseAuthentication]] = [ThrottledBasicAuthentication, SessionAuthentication]
    if apps.is_installed("rest_framework.authtoken"):
        classes.insert(0, ThrottledTokenAuthentication)
    return classes
