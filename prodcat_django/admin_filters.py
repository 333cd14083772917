"""Changelist filters of the suggestion review admin.

Each filter costs at most one small query per changelist render, whatever the page size.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from prodcat_django.models import SuggestionBatch

logger = logging.getLogger(__name__)


def auto_accept_threshold() -> float | None:
    """The configured checkpoint's validated auto-accept threshold, read without torch; None
    when the checkpoint has none or cannot be read (the filter then hides that choice)."""
    from prodcat_django.classifier import checkpoint_info

    try:
        return checkpoint_info().threshold
    except Exception as exc:  # a missing or broken checkpoint must not break the admin
        logger.warning("prodcat admin: cannot read the checkpoint's threshold: %s", exc)
        return None


class ScoreBandFilter(admin.SimpleListFilter):
    """Bands of the top label's calibrated score, plus "auto-acceptable" (at or above the
    checkpoint's validated threshold)."""

    title = _("score")
    parameter_name = "score_band"

    BANDS = {
        "low": Q(score__lt=0.5),
        "mid": Q(score__gte=0.5, score__lt=0.9),
        "high": Q(score__gte=0.9),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        choices: list[tuple[str, Any]] = [
            ("low", _("below 50%")),
            ("mid", _("50% to 90%")),
            ("high", _("90% and above")),
        ]
        threshold = auto_accept_threshold()
        if threshold is not None:
            choices.append(
                ("auto", _("auto-acceptable (≥ %(pct)s%%)") % {"pct": f"{threshold * 100:.0f}"})
            )
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        value = self.value()
        if value in self.BANDS:
            return queryset.filter(self.BANDS[value])
        if value == "auto":
            threshold = auto_accept_threshold()
            if threshold is None:
                return queryset.none()
            return queryset.filter(score__gte=threshold)
        return None


class PredictedLabelFilter(admin.SimpleListFilter):
    """The top label the model predicted (the labels present in the table, one query)."""

    title = _("predicted label")
    parameter_name = "label"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        labels = (
            model_admin.get_queryset(request)
            .exclude(label="")
            .order_by("label")
            .values_list("label", flat=True)
            .distinct()
        )
        return [(label, label) for label in labels]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value():
            return queryset.filter(label=self.value())
        return None


class BatchFilter(admin.SimpleListFilter):
    """The bulk request a suggestion came from: the latest batches, and the chosen one."""

    title = _("batch")
    parameter_name = "batch"
    LATEST = 15

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        batches = list(
            SuggestionBatch.objects.order_by("-created_at", "-pk").only(
                "pk", "label", "total", "created_at"
            )[: self.LATEST]
        )
        chosen = self.value()
        if chosen and chosen.isdigit() and all(str(b.pk) != chosen for b in batches):
            batches += list(SuggestionBatch.objects.filter(pk=int(chosen)))
        return [(str(b.pk), f"#{b.pk} {b}") for b in batches]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        value = self.value()
        if not value:
            return None
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(batch_id=int(value))
