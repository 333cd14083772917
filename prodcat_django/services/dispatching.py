"""Sending work to the broker, and the sweep that re-sends what never reached a worker.

The task is looked up by name in the Celery app's registry, so this layer never imports the
task module (an entry point): ``prodcat_django.apps`` imports it at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from prodcat_django.conf import prodcat_settings
from prodcat_django.models import OPEN_STATUSES, CategorySuggestion, SuggestionStatus

logger = logging.getLogger(__name__)

#: The name under which :mod:`prodcat_django.tasks` registers the worker's task.
RUN_TASK = "prodcat.run_suggestions"


def _run_task():
    from celery import current_app

    return current_app.tasks[RUN_TASK]


def dispatch(suggestion_ids: Sequence[int]) -> bool:
    """Send the ``prodcat.run_suggestions`` task for ``suggestion_ids`` on ``PRODCAT["QUEUE"]``.

    Never raises for broker trouble: a refused or slow connection (``BROKER_TIMEOUT`` seconds,
    no publish retry) is logged and False returned; the rows stay pending with
    ``dispatched_at`` unset for :func:`dispatch_pending`. On success ``dispatched_at`` is set.
    """
    ids = [int(pk) for pk in suggestion_ids]
    if not ids:
        return True
    from kombu.exceptions import KombuError

    run_suggestions_task = _run_task()
    app = run_suggestions_task.app
    queue = prodcat_settings.QUEUE
    sent_at = timezone.now()
    try:
        if app.conf.task_always_eager:
            # Unit tests only: the task runs inline, no broker involved.
            CategorySuggestion.objects.filter(pk__in=ids).update(dispatched_at=sent_at)
            run_suggestions_task.apply_async(args=[ids], queue=queue)
            return True
        timeout = float(prodcat_settings.BROKER_TIMEOUT)
        with app.connection_for_write(
            connect_timeout=timeout,
            transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            producer = app.amqp.Producer(conn)
            run_suggestions_task.apply_async(
                args=[ids], queue=queue, producer=producer, retry=False
            )
    except (KombuError, OSError, TimeoutError) as exc:
        logger.warning(
            "prodcat: could not send %d suggestion(s) to the broker (%s: %s); they stay "
            "pending until dispatch_pending runs",
            len(ids),
            type(exc).__name__,
            exc,
        )
        return False
    CategorySuggestion.objects.filter(pk__in=ids).update(dispatched_at=sent_at)
    return True


def stuck_suggestions(*, older_than: float | timedelta | None = None) -> models.QuerySet:
    """Current pending rows never dispatched, and pending/running rows dispatched (and not
    updated) more than ``older_than`` ago (default ``STUCK_AFTER`` seconds), oldest first."""
    if older_than is None:
        older_than = prodcat_settings.STUCK_AFTER
    if not isinstance(older_than, timedelta):
        older_than = timedelta(seconds=float(older_than))
    cutoff = timezone.now() - older_than
    return (
        CategorySuggestion.objects.filter(is_current=True, status__in=OPEN_STATUSES)
        .filter(
            Q(status=SuggestionStatus.PENDING, dispatched_at__isnull=True)
            | Q(dispatched_at__lt=cutoff, updated_at__lt=cutoff)
        )
        .order_by("pk")
    )


def dispatch_pending(
    *, older_than: float | timedelta | None = None, limit: int | None = None
) -> int:
    """Re-send :func:`stuck_suggestions` in chunks of ``BULK_CHUNK_SIZE``; returns how many
    were sent (it stops at the first chunk the broker refuses). Run it periodically (the
    ``prodcat.dispatch_pending`` task) or by hand (``manage.py prodcat_dispatch_pending``).
    """
    stuck = stuck_suggestions(older_than=older_than).values_list("pk", flat=True)
    if limit is not None:
        stuck = stuck[:limit]
    ids = list(stuck)
    chunk = int(prodcat_settings.BULK_CHUNK_SIZE)
    sent = 0
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        if not dispatch(part):
            break  # the broker is down: the rest would fail the same way
        sent += len(part)
    return sent
