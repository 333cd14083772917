"""``{% load prodcat_oscar %}``: the current suggestion on Oscar's dashboard product form.

``{% prodcat_suggestion_panel product %}`` renders ``prodcat_oscar/product_suggestion.html``
(nothing for a new product or a variant); its buttons submit ``prodcat_review_form``, which
``{% prodcat_review_form product %}`` renders outside the product form (forms do not nest).

``{% prodcat_list_suggestion record column %}``: the suggestion under each title of Oscar's
dashboard product list (``oscar/dashboard/catalogue/product_row_title.html``); the page's
suggestions and their category paths are loaded once per table, not once per row.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from prodcat_django import services
from prodcat_django.admin.display import confidence, merchant_status, percent
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


#: Set on a django-tables2 table once its page's suggestions are loaded: {pk: row context}.
LIST_CACHE = "_prodcat_list_suggestions"


@register.inclusion_tag("prodcat_oscar/list_suggestion.html")
def prodcat_list_suggestion(record: Any, column: Any = None) -> dict[str, Any]:
    """``column`` is django-tables2's bound column (``column`` in a ``TemplateColumn``'s
    context): its table says which products the page shows."""
    if record is None or not is_registered(record):
        return {"row": None}
    table = getattr(column, "_table", None)
    cache = getattr(table, LIST_CACHE, None) if table is not None else None
    if cache is None:
        cache = _load_page((_page_records(table) if table is not None else []) or [record])
        if table is not None:
            setattr(table, LIST_CACHE, cache)
    if record.pk not in cache:  # not on the page the table reported: read it alone
        cache.update(_load_page([record]))
    return {"row": cache.get(record.pk)}


def _page_records(table: Any) -> list[Any]:
    try:
        rows = table.paginated_rows if getattr(table, "page", None) is not None else table.rows
        return [row.record for row in rows]
    except AttributeError:  # not a django-tables2 table after all
        return []


def _load_page(products: list[Any]) -> dict[Any, dict[str, Any] | None]:
    """``{product pk: {"suggestion", "status", "label", "pct", "band", "url"}}`` (None for
    a variant, or a product without a suggestion): two queries for the whole page."""
    products = [p for p in products if getattr(p, "pk", None) is not None]
    if not products:
        return {}
    adapter = get_adapter(products[0])
    services.prefetch_current_suggestions(products)
    found = {p.pk: getattr(p, adapter.suggestion_attr) for p in products}
    keys = [s.category_pk for s in found.values() if s is not None and s.category_pk]
    labels = adapter.category_labels(keys) if keys else {}
    review = reverse("prodcat_oscar:prodcat-suggestion-list")
    result: dict[Any, dict[str, Any] | None] = {}
    for product in products:
        suggestion = found[product.pk]
        if suggestion is None or not adapter.should_suggest(product):
            result[product.pk] = None
            continue
        result[product.pk] = {
            "suggestion": suggestion,
            "status": merchant_status(suggestion.status),
            "label": labels.get(suggestion.category_pk, "") or suggestion.label,
            "pct": percent(suggestion.score) if suggestion.score is not None else None,
            "band": confidence(suggestion.score),
            "url": f"{review}?status={suggestion.status}",
        }
    return result
