"""``{% load prodcat_oscar %}``: the current suggestion on Oscar's dashboard product form.

``{% prodcat_suggestion_panel product %}`` renders ``prodcat_oscar/product_suggestion.html``
(nothing for a new product or a variant); its buttons submit ``prodcat_review_form``, which
``{% prodcat_review_form product %}`` renders outside the product form (forms do not nest).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from prodcat_django import services
from prodcat_django.models import CategorySuggestion
from prodcat_django.registry import get_adapter, is_registered

register = template.Library()

FORM_ID = "prodcat_review_form"


def _suggestion(product: Any) -> tuple[Any, CategorySuggestion | None]:
    if product is None or getattr(product, "pk", None) is None or not is_registered(product):
        return None, None
    adapter = get_adapter(product)
    if not adapter.should_suggest(product):
        return adapter, None
    return adapter, CategorySuggestion.objects.current_for(product).first()


@register.inclusion_tag("prodcat_oscar/product_suggestion.html", takes_context=True)
def prodcat_suggestion_panel(context: template.Context, product: Any) -> dict[str, Any]:
    adapter, suggestion = _suggestion(product)
    if suggestion is None:
        return {"suggestion": None}
    keys = [s for s in [suggestion.category_pk, suggestion.correction_pk] if s]
    labels = adapter.category_labels(keys) if keys else {}
    request = context.get("request")
    user = getattr(request, "user", None)
    return {
        "suggestion": suggestion,
        "category_label": labels.get(suggestion.category_pk, ""),
        "correction_label": labels.get(suggestion.correction_pk, ""),
        "alternatives": suggestion.labels[1:],
        "can_review": services.can_review(user) and suggestion.status == "ready",
        "form_id": FORM_ID,
    }


@register.inclusion_tag("prodcat_oscar/review_form.html", takes_context=True)
def prodcat_review_form(context: template.Context, product: Any) -> dict[str, Any]:
    _, suggestion = _suggestion(product)
    request = context.get("request")
    return {
        "suggestion": suggestion,
        "action": (
            reverse("prodcat_oscar:prodcat-suggestion-review", args=[suggestion.pk])
            if suggestion is not None
            else ""
        ),
        "next": request.get_full_path() if request is not None else "",
        "csrf_token": context.get("csrf_token"),
        "form_id": FORM_ID,
    }
