"""Celery tasks: thin wrappers over :mod:`prodcat_django.services`, taking ids, not objects.

They are sent to ``PRODCAT["QUEUE"]`` (default ``prodcat``) by ``services.dispatch``; run a
worker on that queue::

    celery -A yourproject worker -Q prodcat --prefetch-multiplier 1

``acks_late``: a worker killed mid-task gets the message redelivered, and the service layer
makes the rerun idempotent. Add the sweep that re-sends suggestions left pending while the
broker was down to the beat schedule::

    CELERY_BEAT_SCHEDULE = {
        "prodcat-dispatch-pending": {
            "task": "prodcat.dispatch_pending",
            "schedule": 300.0,
            "options": {"queue": "prodcat"},
        },
    }
"""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="prodcat.run_suggestions", acks_late=True, ignore_result=True)
def run_suggestions_task(suggestion_ids: list[int]) -> dict[str, Any]:
    """Classify the products of these suggestions and store the results."""
    from prodcat_django import services

    return services.run_suggestions(suggestion_ids).as_dict()


@shared_task(name="prodcat.dispatch_pending", acks_late=True, ignore_result=True)
def dispatch_pending_task(older_than: float | None = None, limit: int | None = None) -> int:
    """Re-send pending suggestions that never reached a worker, and stuck ones."""
    from prodcat_django import services

    return services.dispatch_pending(older_than=older_than, limit=limit)
