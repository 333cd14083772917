"""What the batch progress page adds to the counts: the rate and the time left, and
"Accept all at or above the threshold" for the batch's confident suggestions.

The threshold is the checkpoint's validated auto-accept threshold (read without torch), or
:data:`~prodcat_django.admin.display.HIGH_SCORE` for a checkpoint without one. Each accept goes
through :func:`prodcat_django.services.accept`, so permissions, the audit trail and the rule
that a decided suggestion is not decided again are the service layer's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from prodcat_django import services
from prodcat_django.admin.display import HIGH_SCORE
from prodcat_django.admin.filters import auto_accept_threshold
from prodcat_django.models import (
    OPEN_STATUSES,
    CategorySuggestion,
    SuggestionBatch,
    SuggestionStatus,
)


def threshold() -> float:
    found = auto_accept_threshold()
    return HIGH_SCORE if found is None else float(found)


def confident(batch: SuggestionBatch) -> QuerySet:
    """The batch's suggestions that wait for review and score at or above :func:`threshold`."""
    return CategorySuggestion.objects.filter(
        batch=batch,
        is_current=True,
        status=SuggestionStatus.READY,
        score__gte=threshold(),
    ).exclude(category_pk="")


def pace(batch: SuggestionBatch, settled: int, total: int) -> dict[str, Any]:
    """Products per minute since the batch was queued, and the minutes left at that rate."""
    last: datetime | None = (
        CategorySuggestion.objects.filter(batch=batch)
        .exclude(status__in=OPEN_STATUSES)
        .aggregate(last=Max("updated_at"))["last"]
    )
    remaining = max(0, total - settled)
    if not settled or last is None:
        return {"rate": None, "left": None, "remaining": remaining}
    end = last if remaining == 0 else timezone.now()
    seconds = max(1.0, (end - batch.created_at).total_seconds())
    per_minute = settled * 60.0 / seconds
    left = remaining / per_minute if remaining else 0.0
    return {
        "rate": _("%(rate)s products a minute") % {"rate": f"{per_minute:.1f}"},
        "left": None
        if not remaining
        else (
            _("less than a minute left")
            if left < 1
            else ngettext("about %(n)d minute left", "about %(n)d minutes left", round(left))
            % {"n": round(left)}
        ),
        "remaining": remaining,
    }


def urls(model_admin: admin.ModelAdmin) -> list[Any]:
    return [
        path(
            "<path:object_id>/accept-confident/",
            model_admin.admin_site.admin_view(
                lambda request, object_id: accept_confident_view(model_admin, request, object_id)
            ),
            name="prodcat_django_suggestionbatch_accept_confident",
        )
    ]


def accept_confident_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    batch = get_object_or_404(SuggestionBatch, pk=unquote(object_id))
    progress = reverse(
        f"{model_admin.admin_site.name}:prodcat_django_suggestionbatch_progress", args=[batch.pk]
    )
    accepted, skipped = 0, 0
    for suggestion in confident(batch).order_by("pk"):
        try:
            services.accept(suggestion, user=request.user)
        except PermissionDenied as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(progress)
        except ValidationError:
            skipped += 1
        else:
            accepted += 1
    pct = round(threshold() * 100)
    model_admin.message_user(
        request,
        ngettext(
            "Accepted %(n)d suggestion at or above %(pct)d%%.",
            "Accepted %(n)d suggestions at or above %(pct)d%%.",
            accepted,
        )
        % {"n": accepted, "pct": pct},
        messages.SUCCESS if accepted else messages.INFO,
    )
    if skipped:
        model_admin.message_user(
            request,
            ngettext(
                "%(n)d suggestion could not be accepted; it stays in the review list.",
                "%(n)d suggestions could not be accepted; they stay in the review list.",
                skipped,
            )
            % {"n": skipped},
            messages.WARNING,
        )
    return HttpResponseRedirect(progress)
