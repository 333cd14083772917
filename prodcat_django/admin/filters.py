"""Changelist filters of the suggestion review admin.

Each filter costs at most one small query per changelist render, whatever the page size.
"""

from __future__ import annotations

import functools
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
    when the checkpoint has none or cannot be read (the filter then hides that choice).
    Cached per checkpoint folder and manifest modification time: the changelist asks on
    every render."""
    from prodcat_django.classifier import checkpoint_path

    try:
        path = checkpoint_path()
        mtime = (path / "manifest.json").stat().st_mtime
    except Exception as exc:  # a missing checkpoint must not break the admin
        _warn_once(f"prodcat admin: no checkpoint to read the auto-accept threshold from: {exc}")
        return None
    return _threshold(str(path), mtime)


@functools.lru_cache(maxsize=8)
def _threshold(path: str, mtime: float) -> float | None:
    from prodcat_django.ml.manifest import read_checkpoint

    try:
        return read_checkpoint(path).threshold
    except Exception as exc:
        _warn_once(f"prodcat admin: cannot read the checkpoint's threshold: {exc}")
        return None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


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
            .prefetch_related(None)
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


class FitFilter(admin.SimpleListFilter):
    """The out-of-taxonomy verdict: suggestions whose product may fit none of the shop's
    categories (they are never auto-accepted; the merchant files them by hand)."""

    title = _("fits a category")
    parameter_name = "fit"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("no", _("May not fit any category")),
            ("yes", _("Fits a category")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "no":
            return queryset.filter(out_of_taxonomy=True)
        if self.value() == "yes":
            return queryset.filter(out_of_taxonomy=False)
        return queryset
