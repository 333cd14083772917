"""Polling the database for what the worker wrote."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import models

from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.e2e.harness import CeleryWorker, wait_until

#: Statuses the worker leaves a suggestion in (auto-accept is off in these settings).
FINISHED = (SuggestionStatus.READY, SuggestionStatus.FAILED)
#: The worker loads the real encoders on its first task; later tasks take well under a second.
FIRST_RESULT_TIMEOUT = 150.0


def _log(worker: CeleryWorker) -> str:
    return f"--- worker log ({worker.log_path}) ---\n{worker.log_tail()}"


def wait_for_suggestion(
    product: models.Model, worker: CeleryWorker, *, timeout: float = FIRST_RESULT_TIMEOUT
) -> CategorySuggestion:
    """The product's current suggestion once the worker finished it (ready or failed)."""
    return wait_until(
        lambda: CategorySuggestion.objects.current_for(product).first(),
        lambda s: s is not None and s.status in FINISHED,
        timeout=timeout,
        what=f"the worker to finish the suggestion for {product!r}",
        on_timeout=lambda: _log(worker),
    )


def wait_for_all(
    suggestion_ids: Sequence[int], worker: CeleryWorker, *, timeout: float = FIRST_RESULT_TIMEOUT
) -> list[CategorySuggestion]:
    """All of ``suggestion_ids`` once none is pending or running any more."""
    ids = list(suggestion_ids)

    def fetch() -> list[CategorySuggestion]:
        return list(CategorySuggestion.objects.filter(pk__in=ids).order_by("pk"))

    def summary() -> str:
        counts: dict[str, int] = {}
        for s in fetch():
            counts[s.status] = counts.get(s.status, 0) + 1
        return f"status counts: {counts}\n{_log(worker)}"

    return wait_until(
        fetch,
        lambda rows: len(rows) == len(ids) and all(s.status in FINISHED for s in rows),
        timeout=timeout,
        what=f"the worker to finish {len(ids)} suggestions",
        on_timeout=summary,
    )


def assert_ready(suggestion: CategorySuggestion, worker: CeleryWorker) -> None:
    assert suggestion.status == SuggestionStatus.READY, (
        f"suggestion {suggestion.pk} is {suggestion.status}: {suggestion.error}\n{_log(worker)}"
    )
