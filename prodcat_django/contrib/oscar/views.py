"""The review page in Oscar's dashboard: the current suggestions of Oscar products, accepted or
rejected (optionally filing the product under another category) with one click.

Access is decided by :class:`~prodcat_django.contrib.oscar.apps.ProdcatOscarConfig`'s
``permissions_map`` (Oscar wraps each URL in ``permissions_required``); the services check the
review permission again. Reads go through the product's adapter: category labels are Oscar's
full paths, loaded for a whole page in a constant number of queries.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import ListView
from oscar.core.loading import get_model

from prodcat_django import services
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from prodcat_django.registry import get_adapter

#: The statuses the page filters by; "ready" (waiting for a decision) is the default.
STATUS_FILTERS = (
    SuggestionStatus.READY,
    SuggestionStatus.PENDING,
    SuggestionStatus.RUNNING,
    SuggestionStatus.FAILED,
    SuggestionStatus.ACCEPTED,
    SuggestionStatus.REJECTED,
)


def product_adapter() -> Any:
    return get_adapter(get_model("catalogue", "Product"))


class SuggestionListView(ListView):
    template_name = "prodcat_oscar/suggestion_list.html"
    context_object_name = "suggestions"

    def get_paginate_by(self, queryset: Any) -> int:
        return int(getattr(settings, "OSCAR_DASHBOARD_ITEMS_PER_PAGE", 20))

    def status(self) -> str:
        wanted = self.request.GET.get("status", SuggestionStatus.READY)
        return wanted if wanted in STATUS_FILTERS else SuggestionStatus.READY

    def flagged(self) -> bool:
        """``?flagged=1``: only the suggestions that may not fit any of the shop's categories."""
        return self.request.GET.get("flagged") == "1"

    def get_queryset(self) -> Any:
        adapter = product_adapter()
        rows = CategorySuggestion.objects.current().filter(
            content_type=adapter.content_type, status=self.status()
        )
        if self.flagged():
            rows = rows.filter(out_of_taxonomy=True)
        return rows.order_by("-score", "-pk")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        adapter = product_adapter()
        page = list(ctx["suggestions"])
        products = adapter.model._default_manager.in_bulk(
            [int(s.object_id) for s in page if s.object_id.isdigit()]
        )
        current = _current_categories(products.values())
        keys = {s.category_pk for s in page} | {k for ks in current.values() for k in ks}
        labels = adapter.category_labels(sorted(k for k in keys if k))
        ctx["rows"] = [
            {
                "suggestion": s,
                "product": products.get(int(s.object_id)) if s.object_id.isdigit() else None,
                "category_label": labels.get(s.category_pk, ""),
                "current_labels": [
                    labels[k]
                    for k in current.get(int(s.object_id) if s.object_id.isdigit() else None, [])
                    if k in labels
                ],
            }
            for s in page
        ]
        ctx["status"] = self.status()
        ctx["flagged"] = self.flagged()
        ctx["status_filters"] = [(value, SuggestionStatus(value).label) for value in STATUS_FILTERS]
        ctx["can_review"] = services.can_review(self.request.user)
        return ctx


def _current_categories(products: Any) -> dict[int, list[str]]:
    """``{product pk: [category keys]}`` in one query."""
    through = get_model("catalogue", "ProductCategory")
    result: dict[int, list[str]] = {}
    rows = through.objects.filter(product__in=list(products)).order_by("pk")
    for product_id, category_id in rows.values_list("product_id", "category_id"):
        result.setdefault(product_id, []).append(str(category_id))
    return result


class ReviewSuggestionView(View):
    """POST ``action=accept`` or ``action=reject`` (with an optional ``category``: a path such
    as "Clothing > Shirts", a name, or an id, to file the product under instead)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponseRedirect:
        suggestion = CategorySuggestion.objects.filter(pk=pk).first()
        action = request.POST.get("action")
        category = (request.POST.get("category") or "").strip() or None
        if suggestion is None:
            messages.error(request, _("That suggestion no longer exists."))
        elif action not in ("accept", "reject"):
            messages.error(request, _("Choose to accept or to reject the suggestion."))
        else:
            try:
                review = services.accept if action == "accept" else services.reject
                review(suggestion, user=request.user, category=category)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, self.success_message(suggestion, action))
        return HttpResponseRedirect(self.next_url(request))

    def success_message(self, suggestion: CategorySuggestion, action: str) -> str:
        adapter = product_adapter()
        key = suggestion.correction_pk or (suggestion.category_pk if action == "accept" else "")
        label = adapter.category_labels([key]).get(key, "") if key else ""
        if label:
            return _("Filed under %(category)s.") % {"category": label}
        return _("Suggestion rejected; the product's categories are unchanged.")

    def next_url(self, request: HttpRequest) -> str:
        target = request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return target
        return reverse("prodcat_oscar:prodcat-suggestion-list")


class CategorySearchView(View):
    """``?q=<term>``: up to 20 Oscar categories whose full path contains the term, as
    ``{"results": [{"key", "label"}]}`` (constant queries): what the review page's "Other
    category" box offers as the merchant types (``category_autocomplete.js``)."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> JsonResponse:
        term = request.GET.get("q", "").strip()[:200]
        results = product_adapter().search_categories(term) if term else []
        return JsonResponse({"results": [{"key": k, "label": label} for k, label in results]})
