"""The try-it page: drop several photos with titles and see, for each, the model's top
categories with confidence bars and what it attended to; nothing is saved.

The page is a form; ``try_it.js`` sends each product to the DRF ``suggest/`` endpoint of the
same site (session authentication, the page's CSRF token; no cross-origin request) with
``explain=true`` and draws the answer. Files that are not images or are over
``MAX_UPLOAD_BYTES`` are refused in the page before anything is sent, and the server's own
refusals are shown as sentences. It needs the ``view`` permission on suggestions, as
``suggest/`` does.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _

from prodcat_django.conf import prodcat_settings

#: Product rows the page starts with (more are added by dropping files or a button).
START_ROWS = 2


def urls(model_admin: admin.ModelAdmin) -> list[Any]:
    return [
        path(
            "try/",
            model_admin.admin_site.admin_view(lambda request: try_it_view(model_admin, request)),
            name="prodcat_django_categorysuggestion_try",
        )
    ]


def try_it_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        suggest_url = reverse("prodcat_api:suggest")
    except NoReverseMatch:
        suggest_url = ""
    limit = int(prodcat_settings.MAX_UPLOAD_BYTES)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Try the model"),
        "opts": model_admin.model._meta,
        "media": model_admin.media,
        "suggest_url": suggest_url,
        "max_bytes": limit,
        "max_mb": f"{limit / (1024 * 1024):.0f}",
        "rows": range(START_ROWS),
    }
    return TemplateResponse(request, "admin/prodcat_django/try_it.html", context)
