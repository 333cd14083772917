"""Sending work to the broker, and the sweep that re-sends what was lost on the way.

Each task gets Celery soft/hard time limits scaled to its size (``runs.task_time_limits``).
The sweep (:func:`dispatch_pending`, run by beat every 10-15 s) sends again, by lease
(see :mod:`prodcat_django.services.runs`):

- pending rows never sent (the broker was down when they were saved);
- running rows whose lease ran out: their worker died (a whole worker killed on Redis, whose
  message comes back only after the visibility timeout) or hangs; they go back to pending;
- sent rows no worker started within ``DISPATCH_LEASE``, while no worker holds a live lease:
  the broker lost the message (a restart without persistence, a publish without confirm). A
  busy queue is left alone: its rows are waiting, not lost.

The task is looked up by name in the Celery app's registry, so this layer never imports the
task module (an entry point): ``prodcat_django.apps`` imports it at start-up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from prodcat_django.conf import prodcat_settings
from prodcat_django.models import OPEN_STATUSES, CategorySuggestion, SuggestionStatus
from prodcat_django.timeouts import task_time_limits

logger = logging.getLogger(__name__)

#: The name under which :mod:`prodcat_django.tasks` registers the worker's task.
RUN_TASK = "prodcat.run_suggestions"


def _run_task():
    from celery import current_app

    return current_app.tasks[RUN_TASK]


class _CommitDispatch:
    """The suggestions one transaction queued, sent in one task when it commits."""

    __qualname__ = "prodcat_django.services.dispatching.dispatch_on_commit"

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.done = False

    def __call__(self) -> None:
        self.done = True
        dispatch(self.ids)


_jobs = threading.local()  # connections are per thread too


def _open_job(using: str | None) -> _CommitDispatch | None:
    """This transaction's job, if it is still waiting for the commit."""
    conn = transaction.get_connection(using)
    job = getattr(_jobs, conn.alias, None)
    if job is None or job.done or not conn.in_atomic_block:
        return None
    # A rollback drops the job from the connection's callbacks (and the rows with it).
    if not any(func is job for _, func, _ in conn.run_on_commit):
        return None
    return job


def dispatch_on_commit(suggestion_ids: Sequence[int], *, using: str | None = None) -> None:
    """Send ``suggestion_ids`` once the surrounding transaction commits (at once outside
    one), together with every other id this transaction queued: one task per transaction."""
    ids = [int(pk) for pk in suggestion_ids]
    job = _open_job(using)
    if job is not None:
        job.ids.extend(pk for pk in ids if pk not in job.ids)
        return
    job = _CommitDispatch()
    job.ids.extend(ids)
    conn = transaction.get_connection(using)
    if conn.in_atomic_block:
        setattr(_jobs, conn.alias, job)
    transaction.on_commit(job, using=using, robust=True)


def queued_in_this_transaction(suggestion_id: int, *, using: str | None = None) -> bool:
    """Whether this transaction queued the suggestion and has not committed yet."""
    job = _open_job(using)
    return job is not None and int(suggestion_id) in job.ids


def dispatch(suggestion_ids: Sequence[int]) -> bool:
    """Send the ``prodcat.run_suggestions`` task for ``suggestion_ids`` on ``PRODCAT["QUEUE"]``.

    Never raises for broker trouble: a refused or slow connection (``BROKER_TIMEOUT`` seconds,
    no publish retry) is logged and False returned; the rows stay pending with
    ``dispatched_at`` unset for :func:`dispatch_pending`. On success ``dispatched_at`` is set
    and the rows' delivery is due within ``DISPATCH_LEASE``.
    """
    ids = [int(pk) for pk in suggestion_ids]
    if not ids:
        return True
    from kombu.exceptions import KombuError

    run_suggestions_task = _run_task()
    app = run_suggestions_task.app
    queue = prodcat_settings.QUEUE
    soft, hard = task_time_limits(len(ids))
    limits = {"soft_time_limit": soft, "time_limit": hard}
    sent_at = timezone.now()
    try:
        if app.conf.task_always_eager:
            # Unit tests only: the task runs inline, no broker involved.
            _mark_sent(ids, sent_at)
            run_suggestions_task.apply_async(args=[ids], queue=queue, **limits)
            return True
        timeout = float(prodcat_settings.BROKER_TIMEOUT)
        with app.connection_for_write(
            connect_timeout=timeout,
            transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            producer = app.amqp.Producer(conn)
            run_suggestions_task.apply_async(
                args=[ids], queue=queue, producer=producer, retry=False, **limits
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
    _mark_sent(ids, sent_at)
    return True


def _mark_sent(ids: list[int], sent_at: datetime) -> None:
    due = sent_at + timedelta(seconds=float(prodcat_settings.DISPATCH_LEASE))
    sent = CategorySuggestion.objects.filter(pk__in=ids)
    sent.update(dispatched_at=sent_at)
    sent.filter(status=SuggestionStatus.PENDING).update(lease_until=due)


def stuck_suggestions(*, older_than: float | timedelta | None = None) -> models.QuerySet:
    """Current open rows the sweep should send again, oldest first (see the module docstring).

    ``older_than`` (seconds), where given, replaces the leases by one rule for everything:
    never sent, or sent and untouched for that long (``prodcat_dispatch_pending
    --older-than``)."""
    now = timezone.now()
    open_rows = CategorySuggestion.objects.filter(is_current=True, status__in=OPEN_STATUSES)
    never_sent = Q(status=SuggestionStatus.PENDING, dispatched_at__isnull=True)
    if older_than is not None:
        if not isinstance(older_than, timedelta):
            older_than = timedelta(seconds=float(older_than))
        cutoff = now - older_than
        return open_rows.filter(
            never_sent | Q(dispatched_at__lt=cutoff, updated_at__lt=cutoff)
        ).order_by("pk")
    lease = timedelta(seconds=float(prodcat_settings.LEASE_SECONDS))
    due = timedelta(seconds=float(prodcat_settings.DISPATCH_LEASE))
    lost_worker = Q(status=SuggestionStatus.RUNNING) & (
        Q(lease_until__lt=now) | Q(lease_until__isnull=True, updated_at__lt=now - lease)
    )
    wanted = never_sent | lost_worker
    busy = open_rows.filter(status=SuggestionStatus.RUNNING, lease_until__gte=now).exists()
    if not busy:
        wanted |= Q(status=SuggestionStatus.PENDING) & (
            Q(lease_until__lt=now) | Q(lease_until__isnull=True, dispatched_at__lt=now - due)
        )
    return open_rows.filter(wanted).order_by("pk")


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
    # Rows of a dead or hung worker start over: pending, so whoever gets the new message may
    # claim them, and the old holder's writes (conditional on its lease) are dropped.
    CategorySuggestion.objects.filter(pk__in=ids, status=SuggestionStatus.RUNNING).update(
        status=SuggestionStatus.PENDING, lease_owner="", updated_at=timezone.now()
    )
    chunk = int(prodcat_settings.BULK_CHUNK_SIZE)
    sent = 0
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        if not dispatch(part):
            break  # the broker is down: the rest would fail the same way
        sent += len(part)
    return sent
