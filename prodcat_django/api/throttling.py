"""The API's rate limit: one DRF scope, ``prodcat``, whose rate is a prodcat setting."""

from __future__ import annotations

from rest_framework.throttling import ScopedRateThrottle

from prodcat_django.conf import prodcat_settings

THROTTLE_SCOPE = "prodcat"


class ProdcatRateThrottle(ScopedRateThrottle):
    """``ScopedRateThrottle`` whose ``prodcat`` rate is ``PRODCAT["API_THROTTLE_RATE"]``.

    The rate is read on every request (so ``override_settings`` works) and shops need no
    ``DEFAULT_THROTTLE_RATES`` entry; ``None`` turns the limit off. Requests are counted per
    user (per client IP when anonymous) in the default cache, like any DRF scoped throttle: with
    several web processes, give them a shared cache (Redis, Memcached, database), or each
    process counts alone.
    """

    def get_rate(self) -> str | None:
        if self.scope == THROTTLE_SCOPE:
            return prodcat_settings.API_THROTTLE_RATE
        return super().get_rate()
