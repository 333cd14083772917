"""Template tags of prodcat's admin pages: ``{% prodcat_review_summary %}`` on the admin index
(how many suggestions wait for review, and the health warning)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from prodcat_django.admin import health, review_queue

register = template.Library()


@register.inclusion_tag("admin/prodcat_django/review_summary.html", takes_context=True)
def prodcat_review_summary(context: Any) -> dict[str, Any]:
    request = context.get("request")
    site_name = getattr(getattr(request, "resolver_match", None), "namespace", "") or "admin"
    try:
        url = reverse(f"{site_name}:prodcat_django_categorysuggestion_changelist")
        try_url = reverse(f"{site_name}:prodcat_django_categorysuggestion_try")
    except NoReverseMatch:
        url = try_url = ""
    return {
        "waiting": review_queue.waiting_count(),
        "url": url,
        "try_url": try_url,
        "warning": health.warning(),
    }
