"""The suggestion where the merchant works: a panel beside the category field of the shop's
product form.

- On the add form it says that a category will be suggested once the product is saved.
- On the change form it shows the current suggestion: "Use Tops (98%)" fills the category
  field (adds it, for a many-to-many), the top labels are chips that do the same for their
  category, and a pending suggestion turns into the result without a reload
  (``product_form.js`` polls :func:`panel_view`, which renders the same fragment).
- Saving the form after "Use" accepts the suggestion through the service layer, so the
  decision lands in the audit trail; without the review permission the category is simply
  saved, as any edit of the form.

Nothing here imports torch; matching labels to categories is one small query per label.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from prodcat_django import services
from prodcat_django.adapters import ProductAdapter
from prodcat_django.admin import health
from prodcat_django.admin.display import confidence, merchant_status, percent, status_badge
from prodcat_django.models import OPEN_STATUSES, CategorySuggestion, SuggestionStatus
from prodcat_django.registry import get_adapter

#: The form field "Use …" sets to the suggestion's id, so saving accepts it.
USED_FIELD = "_prodcat_used_suggestion"
#: Milliseconds between two polls of a pending suggestion.
POLL_MS = 2000


def panel(product: Model, admin_site: admin.AdminSite) -> SafeString:
    """The panel for ``product`` (unsaved: the note of the add form)."""
    template = "admin/prodcat_django/product_form/panel.html"
    if product.pk is None:
        return SafeString(render_to_string(template, {"unsaved": True}))
    return SafeString(render_to_string(template, panel_context(product, admin_site)))


def panel_context(product: Model, admin_site: admin.AdminSite) -> dict[str, Any]:
    spec = get_adapter(product)
    suggestion = CategorySuggestion.objects.current_for(product).first()
    opts = product._meta
    context: dict[str, Any] = {
        "suggestion": suggestion,
        "category_field": spec.category_field,
        "used_field": USED_FIELD,
        "poll_url": _reverse(
            admin_site, f"{opts.app_label}_{opts.model_name}_prodcat_suggestion", product.pk
        ),
        "poll_ms": POLL_MS,
        "warning": health.warning(admin_site),
    }
    if suggestion is None:
        return context
    context.update(
        status=merchant_status(suggestion.status),
        badge=status_badge(suggestion.status),
        open=suggestion.status in OPEN_STATUSES,
        usable=suggestion.status == SuggestionStatus.READY,
        review_url=_reverse(admin_site, "prodcat_django_categorysuggestion_change", suggestion.pk),
        explanation_url=_reverse(
            admin_site, "prodcat_django_categorysuggestion_explanation", suggestion.pk
        ),
        chips=_chips(suggestion, spec),
    )
    context["top"] = context["chips"][0] if context["chips"] else None
    if suggestion.reviewed_by_id:
        context["reviewer"] = suggestion.reviewed_by.get_username()
    return context


def _chips(suggestion: CategorySuggestion, spec: ProductAdapter) -> list[dict[str, Any]]:
    """The suggestion's labels, best first, each with the shop category it matches (the top
    one as the worker matched it, the others matched now)."""
    chips = []
    for i, item in enumerate(suggestion.labels or []):
        label, score = str(item.get("label", "")), item.get("score")
        if i == 0 and suggestion.category_pk:
            key = suggestion.category_pk
        else:
            category = spec.match_label(label) if label else None
            key = "" if category is None else spec.category_key(category)
        chips.append({"label": label, "pct": percent(score), "band": confidence(score), "key": key})
    # The categories' labels (full paths in a tree) in one lookup for all chips.
    labels = spec.category_labels([c["key"] for c in chips if c["key"]])
    for chip in chips:
        key = chip.pop("key")
        chip["category_pk"] = key if key in labels else ""
        chip["category_name"] = labels.get(key, "")
    return chips


def panel_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> Any:
    """The panel alone: what ``product_form.js`` polls while a suggestion is pending."""
    product = model_admin.get_object(request, object_id)
    if product is None:
        raise Http404
    if not model_admin.has_view_or_change_permission(request, product):
        raise PermissionDenied
    return HttpResponse(panel(product, model_admin.admin_site))


def accept_used_suggestion(request: HttpRequest, product: Model, form: Any) -> None:
    """When the merchant pressed "Use …" and saves with that category, accept the suggestion
    (before the form saves, so the audit trail records the category the product had). A
    many-to-many field is saved by the form alone."""
    used = request.POST.get(USED_FIELD, "")
    if not used.isdigit() or product.pk is None:
        return
    field = get_adapter(product).category_field
    chosen = form.cleaned_data.get(field) if field else None
    if not isinstance(chosen, Model):
        return
    category_pk = chosen.pk
    suggestion = CategorySuggestion.objects.current_for(product).filter(pk=int(used)).first()
    if suggestion is None or suggestion.status != SuggestionStatus.READY:
        return
    if category_pk is None or str(category_pk) not in _chip_categories(suggestion, product):
        return  # the merchant chose something else after all: a plain edit
    if not services.can_review(request.user):
        return
    try:
        services.accept(suggestion, user=request.user, category=category_pk)
    except (PermissionDenied, ValidationError) as exc:
        messages.warning(
            request,
            _("The category is saved; the suggestion stays open for review: %(why)s")
            % {"why": " ".join(getattr(exc, "messages", [str(exc)]))},
        )


def _chip_categories(suggestion: CategorySuggestion, product: Model) -> set[str]:
    return {c["category_pk"] for c in _chips(suggestion, get_adapter(product)) if c["category_pk"]}


def _reverse(admin_site: admin.AdminSite, name: str, pk: Any) -> str:
    try:
        return reverse(f"{admin_site.name}:{name}", args=[pk])
    except NoReverseMatch:
        return ""
