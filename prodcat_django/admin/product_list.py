"""The suggestion column of the shop's product list, its filters, and the row's Accept.

- :func:`suggestion_cell`: the merchant's word for the state ("Suggested", "Waiting"), the
  top label in a pill whose colour and icon differ between a 42% and a 99% suggestion, and,
  for a reviewer, an Accept button that decides it without leaving the list
  (:mod:`prodcat_django.admin.quick_review`).
- :class:`SuggestionStateFilter` and :class:`SuggestionScoreFilter`: filter products on their
  current suggestion's state and score band (one ``EXISTS`` subquery each).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Exists, Model, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from prodcat_django.admin.display import HIGH_SCORE, LOW_SCORE, confidence_badge, status_badge
from prodcat_django.models import OPEN_STATUSES, CategorySuggestion, SuggestionStatus

#: Set on each listed product by the prefetching changelist: whether the viewer may review,
#: and the list's URL to come back to after a row's Accept.
ROW_CONTEXT = "_prodcat_row_context"


def remember_row_context(products: list[Model], request: HttpRequest) -> None:
    from prodcat_django import services

    context = {"can_review": services.can_review(request.user), "next": request.get_full_path()}
    for product in products:
        product.__dict__[ROW_CONTEXT] = context


def suggestion_cell(product: Model, admin_site: admin.AdminSite | None = None) -> SafeString:
    """The current suggestion of ``product`` for its list row (no query: prefetched)."""
    from prodcat_django.registry import get_adapter

    suggestion = getattr(product, get_adapter(product).suggestion_attr)
    if suggestion is None:
        return format_html('<span class="prodcat-decision">{}</span>', _("no suggestion"))
    cell = status_badge(suggestion.status)
    if suggestion.label and suggestion.status not in OPEN_STATUSES:
        cell = format_html("{} {}", cell, confidence_badge(suggestion.label, suggestion.score))
    url = admin_url(admin_site, "prodcat_django_categorysuggestion_change", suggestion.pk)
    if url:
        cell = format_html('<a href="{}" title="{}">{}</a>', url, _("Review"), cell)
    row = product.__dict__.get(ROW_CONTEXT) or {}
    quick = admin_url(admin_site, "prodcat_django_categorysuggestion_quick", suggestion.pk)
    if (
        row.get("can_review")
        and quick
        and suggestion.status == SuggestionStatus.READY
        and suggestion.category_pk
    ):
        cell = format_html(
            '{} <button type="submit" class="button prodcat-quick" formaction="{}" '
            'formmethod="post" name="decision" value="accept" data-prodcat-quick '
            'data-prodcat-next="{}" aria-label="{}">{}</button>',
            cell,
            quick,
            row.get("next", ""),
            _("Accept %(label)s for %(product)s") % {"label": suggestion.label, "product": product},
            _("Accept"),
        )
    return format_html('<span class="prodcat-cell" data-prodcat-quick-slot>{}</span>', cell)


def admin_url(admin_site: admin.AdminSite | None, name: str, pk: Any) -> str | None:
    """``name`` on ``admin_site`` (or the default site), if registered there."""
    sites = [admin_site.name] if admin_site is not None else []
    for site_name in dict.fromkeys([*sites, admin.site.name]):
        try:
            return reverse(f"{site_name}:{name}", args=[pk])
        except NoReverseMatch:
            continue
    return None


def _current_suggestions(queryset: QuerySet, condition: Q) -> Exists:
    ct = ContentType.objects.get_for_model(queryset.model, for_concrete_model=True)
    return Exists(
        CategorySuggestion.objects.filter(
            condition,
            content_type=ct,
            object_id=Cast(OuterRef("pk"), output_field=CharField()),
            is_current=True,
        )
    )


class SuggestionStateFilter(admin.SimpleListFilter):
    """Products by the state of their current suggestion, in the merchant's words."""

    title = gettext_lazy("suggestion")
    parameter_name = "prodcat_state"

    STATES = {
        "review": Q(status=SuggestionStatus.READY),
        "waiting": Q(status__in=OPEN_STATUSES),
        "failed": Q(status=SuggestionStatus.FAILED),
        "accepted": Q(status=SuggestionStatus.ACCEPTED),
        "rejected": Q(status=SuggestionStatus.REJECTED),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("review", gettext_lazy("Suggested, to review")),
            ("waiting", gettext_lazy("Waiting for the model")),
            ("failed", gettext_lazy("Could not suggest")),
            ("accepted", gettext_lazy("Accepted")),
            ("rejected", gettext_lazy("Rejected")),
            ("none", gettext_lazy("No suggestion")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        value = self.value()
        if value in self.STATES:
            return queryset.filter(_current_suggestions(queryset, self.STATES[value]))
        if value == "none":
            return queryset.exclude(_current_suggestions(queryset, Q()))
        return None


class SuggestionScoreFilter(admin.SimpleListFilter):
    """Products by how sure the model is of their current suggestion."""

    title = gettext_lazy("suggestion score")
    parameter_name = "prodcat_score"

    BANDS = {
        "high": Q(score__gte=HIGH_SCORE),
        "mid": Q(score__gte=LOW_SCORE, score__lt=HIGH_SCORE),
        "low": Q(score__lt=LOW_SCORE),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("high", _("Confident (%(pct)d%% and above)") % {"pct": HIGH_SCORE * 100}),
            (
                "mid",
                _("Fairly sure (%(low)d%% to %(high)d%%)")
                % {"low": LOW_SCORE * 100, "high": HIGH_SCORE * 100},
            ),
            ("low", _("Unsure (below %(pct)d%%)") % {"pct": LOW_SCORE * 100}),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        value = self.value()
        if value in self.BANDS:
            return queryset.filter(_current_suggestions(queryset, self.BANDS[value]))
        return None
