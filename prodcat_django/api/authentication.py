"""The API's authentication classes, explicit rather than the project's DRF defaults.

Token (only when ``rest_framework.authtoken`` is installed), then HTTP Basic, then the Django
session (with DRF's CSRF check, so a logged-in admin page can call the API). A request with no
credentials gets ``401`` with a ``WWW-Authenticate`` challenge from the first class. Basic
sends the password with every request: serve the API over HTTPS only.
"""

from __future__ import annotations

from django.apps import apps
from rest_framework.authentication import (
    BaseAuthentication,
    BasicAuthentication,
    SessionAuthentication,
)


def api_authentication_classes() -> list[type[BaseAuthentication]]:
    """Resolved per request, so installing ``rest_framework.authtoken`` needs no other change."""
    classes: list[type[BaseAuthentication]] = [BasicAuthentication, SessionAuthentication]
    if apps.is_installed("rest_framework.authtoken"):
        from rest_framework.authentication import TokenAuthentication

        classes.insert(0, TokenAuthentication)
    return classes
