"""Deciding a suggestion from a list row: Accept, or "File under…" a chosen category.

The row's buttons post the list's own form here (``formaction``), so without JavaScript the
merchant comes back to the same list, filters kept, with a message; ``quick_review.js`` posts
the same fields with ``fetch`` and updates the row in place from the JSON answer. Decisions go
through :mod:`prodcat_django.services`, which checks the permission and the suggestion's state.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from prodcat_django import services
from prodcat_django.adapters import ProductAdapter
from prodcat_django.admin.display import status_badge
from prodcat_django.models import CategorySuggestion
from prodcat_django.registry import NotRegistered, get_adapter

#: The name of a row's category chooser: one per row, since the whole list form is posted.
CATEGORY_FIELD = "prodcat_category_{pk}"


def urls(model_admin: admin.ModelAdmin) -> list[Any]:
    return [
        path(
            "<path:object_id>/quick/",
            model_admin.admin_site.admin_view(
                lambda request, object_id: quick_view(model_admin, request, object_id)
            ),
            name="prodcat_django_categorysuggestion_quick",
        )
    ]


def quick_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    suggestion = model_admin.get_object(request, unquote(object_id))
    if suggestion is None:
        raise Http404
    decision = request.POST.get("decision", "")
    ok = False
    try:
        if decision == "accept":
            services.accept(suggestion, user=request.user)
            text = _("Accepted: %(product)s is filed under %(category)s.") % {
                "product": _title(suggestion),
                "category": _category(
                    suggestion, suggestion.correction_pk or suggestion.category_pk
                ),
            }
        elif decision == "file":
            chosen = request.POST.get(CATEGORY_FIELD.format(pk=suggestion.pk)) or request.POST.get(
                "category", ""
            )
            if not chosen:
                raise ValidationError(_("Choose the category to file the product under."))
            category = _resolve(suggestion, chosen)
            if category is not None and str(category.pk) == suggestion.category_pk:
                services.accept(suggestion, user=request.user)
            else:
                services.reject(suggestion, user=request.user, category=category)
            text = _("Filed %(product)s under %(category)s.") % {
                "product": _title(suggestion),
                "category": category,
            }
        else:
            raise ValidationError(_("Unknown decision."))
        ok = True
    except PermissionDenied as exc:
        text = str(exc) or _("You may not review category suggestions.")
    except ValidationError as exc:
        text = " ".join(exc.messages)
    if request.headers.get("Accept", "").startswith("application/json"):
        suggestion.refresh_from_db()
        return JsonResponse(
            {
                "ok": ok,
                "message": text,
                "status": suggestion.status,
                "badge": str(status_badge(suggestion.status)),
            },
            status=200 if ok else 409,
        )
    model_admin.message_user(request, text, messages.SUCCESS if ok else messages.ERROR)
    return HttpResponseRedirect(_next_url(model_admin, request))


def _resolve(suggestion: CategorySuggestion, pk: str) -> Any:
    spec = _spec(suggestion)
    if spec is None:
        raise ValidationError(_("The product's model is no longer registered with prodcat."))
    try:
        return spec.resolve_category(pk)
    except ValidationError:
        raise ValidationError(_("That category does not exist (any more).")) from None


def _spec(suggestion: CategorySuggestion) -> ProductAdapter | None:
    model = ContentType.objects.get_for_id(suggestion.content_type_id).model_class()
    try:
        return get_adapter(model) if model is not None else None
    except NotRegistered:
        return None


def _title(suggestion: CategorySuggestion) -> str:
    spec = _spec(suggestion)
    try:
        product = suggestion.product
    except (AttributeError, LookupError):
        product = None
    if product is None or spec is None:
        return _("product #%(id)s") % {"id": suggestion.object_id}
    title = spec.get_text(product).split("\n", 1)[0]
    return title or _("product #%(id)s") % {"id": suggestion.object_id}


def _category(suggestion: CategorySuggestion, pk: str) -> str:
    spec = _spec(suggestion)
    if spec is None or not pk:
        return suggestion.label
    return spec.category_labels([pk]).get(pk, suggestion.label)


def _next_url(model_admin: admin.ModelAdmin, request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return reverse(f"{model_admin.admin_site.name}:prodcat_django_categorysuggestion_changelist")
