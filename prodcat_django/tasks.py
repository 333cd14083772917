"""Celery tasks: thin wrappers over :mod:`prodcat_django.services`, taking ids, not objects.

They are sent to ``PRODCAT["QUEUE"]`` (default ``prodcat``) by ``services.dispatch``; run a
worker on that queue, and the sweep every 10-15 s (beat, or ``celery worker -B``)::

    celery -A yourproject worker -Q prodcat --prefetch-multiplier 1 -c 2

    CELERY_BEAT_SCHEDULE = {
        "prodcat-dispatch-pending": {
            "task": "prodcat.dispatch_pending",
            "schedule": 10.0,
            "options": {"queue": "prodcat", "expires": 10.0},
        },
        # Learn from the shop: every night, train a new version when at least
        # PRODCAT["RETRAIN_MIN_NEW"] new decisions or categorized products accumulated since
        # the active one; it is activated only if it passes the promotion gate.
        "prodcat-retrain": {
            "task": "prodcat.retrain",
            "schedule": crontab(hour=3, minute=0),  # from celery.schedules import crontab
            "kwargs": {"if_due": True},
            "options": {"queue": "prodcat_train"},
        },
    }

What happens when something dies (figures in docs/reliability.md):

- ``acks_late`` and ``reject_on_worker_lost`` are set on the task, so a pool process killed
  mid-task (SIGKILL, the OOM killer, a crash in C code) has its message put back and
  redelivered at once, on Redis and RabbitMQ alike. The redelivery (same task id) takes its
  rows back; the rows that were in the pass when it died are crash suspects, run one at a
  time, and one that kills the worker ``MAX_CRASHES`` times fails with that reason, so a
  poison input costs one product and cannot loop forever.
- A whole worker killed: RabbitMQ redelivers when the connection drops. Redis keeps the
  message invisible until kombu's ``visibility_timeout`` (one hour by default), so recovery
  does not wait for it: the rows' lease (``LEASE_SECONDS``) runs out and the sweep sends them
  again. Keep ``visibility_timeout`` above the longest hard time limit (``manage.py check``
  warns, ``prodcat.W008``), or a long task is delivered twice.
- Messages lost by the broker (Redis without persistence restarted, RabbitMQ killed before a
  publish was confirmed): the sweep sends rows that no worker started within
  ``DISPATCH_LEASE`` while no worker is busy. Set ``broker_transport_options =
  {"confirm_publish": True}`` on RabbitMQ (``prodcat.W007`` otherwise) and run Redis with
  ``appendonly yes`` in production.
- The database goes away mid-task (``OperationalError``/``InterfaceError``): the task retries
  with exponential backoff (1 s doubling to 30 s, ``DATABASE_RETRIES`` times), its rows keep
  their lease; past that the lease runs out and the sweep sends them again.
- Time limits: each task is sent with soft/hard limits scaled to its size
  (``TIME_LIMIT_BASE``, ``TIME_LIMIT_PER_PRODUCT``; the decorator's are for a
  ``BULK_CHUNK_SIZE`` task sent by hand). A forward pass running past its own deadline is
  retried product by product and the product that hangs fails with that reason; at the soft
  limit the rows in the pass fail and the rest go back to the sweep; at the hard limit the
  pool kills the process and the crash rule above applies.
- A checkpoint that cannot be loaded: nothing is claimed, the worker's ``WorkerHealth`` row
  and log say why, the worker stops consuming the prodcat queue (``cancel_consumer``) and puts
  the message back (``Reject(requeue=True)``) for a worker that can load the model; the rows
  wait, pending, until one does (restart this one once the checkpoint is fixed).

``prodcat.retrain`` runs on its own queue (``PRODCAT["TRAIN_QUEUE"]``, default
``prodcat_train``) so a training never delays suggestions: run one worker for it,
``celery -A yourproject worker -Q prodcat_train --concurrency 1``. A lock row in the database
keeps it to one training at a time across machines.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from celery.signals import celeryd_after_setup, worker_process_init
from django.db import InterfaceError, OperationalError, connections

from prodcat_django.conf import DEFAULTS

logger = logging.getLogger(__name__)

#: Retries of a task stopped by a database error (backoff 1, 2, 4, ... 30 s: about 4 minutes).
DATABASE_RETRIES = 10
_DEFAULT_SOFT = float(DEFAULTS["TIME_LIMIT_BASE"]) + 2 * float(
    DEFAULTS["TIME_LIMIT_PER_PRODUCT"]
) * (int(DEFAULTS["BULK_CHUNK_SIZE"]) + 2)


def _database_backoff(retries: int) -> float:
    return float(min(30, 2**retries))


@shared_task(
    bind=True,
    name="prodcat.run_suggestions",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=_DEFAULT_SOFT,
    time_limit=_DEFAULT_SOFT + 30,
    max_retries=DATABASE_RETRIES,
)
def run_suggestions_task(
    self: Any, suggestion_ids: list[int], after_database_error: bool = False
) -> dict[str, Any] | None:
    """Classify the products of these suggestions and store the results."""
    from prodcat_django import services

    owner = self.request.id or ""
    try:
        return services.run_suggestions(
            suggestion_ids,
            owner=owner,
            worker=self.request.hostname or "",
            after_database_error=after_database_error,
        ).as_dict()
    except (OperationalError, InterfaceError) as exc:
        # The connection is broken: drop it so the retry opens a fresh one.
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
            conn.close()
        delay = _database_backoff(self.request.retries)
        logger.warning(
            "prodcat: database error in task %s (%s); retrying in %.0f s", owner, exc, delay
        )
        raise self.retry(
            exc=exc,
            countdown=delay,
            args=[suggestion_ids],
            kwargs={"after_database_error": True},
        ) from exc
    except SoftTimeLimitExceeded:
        back = services.release(
            owner, in_flight_error="timed out: the task's soft time limit struck in this pass"
        )
        logger.warning("prodcat: task %s hit its soft time limit; %d row(s) left", owner, back)
        return None
    except services.ModelUnavailable as exc:
        if self.request.is_eager or not self.request.hostname:
            raise
        _stop_consuming(self, str(exc))
        # Back to the queue, for a worker that can load the model.
        raise Reject(str(exc), requeue=True) from exc


def _stop_consuming(task: Any, reason: str) -> None:
    """Ask this worker to stop taking prodcat tasks: it cannot run them."""
    from prodcat_django.conf import prodcat_settings

    hostname = task.request.hostname
    logger.error(
        "prodcat: worker %s stops consuming %r: cannot load the model (%s)",
        hostname,
        prodcat_settings.QUEUE,
        reason,
    )
    try:
        task.app.control.cancel_consumer(
            prodcat_settings.QUEUE, destination=[hostname], reply=False
        )
    except Exception:  # the broker may be the problem too; the log line above says why
        logger.exception("prodcat: could not cancel the consumer of %s", hostname)


@shared_task(name="prodcat.dispatch_pending", acks_late=True, ignore_result=True)
def dispatch_pending_task(older_than: float | None = None, limit: int | None = None) -> int:
    """Re-send suggestions that never reached a worker, or whose worker lost its lease."""
    from prodcat_django import services

    return services.dispatch_pending(older_than=older_than, limit=limit)


@shared_task(name="prodcat.retrain", acks_late=False, ignore_result=True)
def retrain_task(
    model: str | None = None, if_due: bool = True, force: bool = False
) -> dict[str, Any]:
    """Train a new model version (when due), gate it and activate it if it passes."""
    from prodcat_django.training.schedule import retrain

    return retrain(model, if_due=if_due, force=force)


@shared_task(
    bind=True,
    name="prodcat.index_products",
    acks_late=True,
    ignore_result=True,
    max_retries=DATABASE_RETRIES,
)
def index_products_task(self: Any, refs: list[list[Any]]) -> int:
    """File products in the neighbour index: ``[[content_type_id, object_id, source]]``."""
    from prodcat_django.services import neighbours

    try:
        return neighbours.run_index(refs)
    except (OperationalError, InterfaceError) as exc:
        for conn in connections.all(initialized_only=True):
            conn.close()
        raise self.retry(exc=exc, countdown=_database_backoff(self.request.retries)) from exc


#: Set in the worker's main process when it consumes prodcat's queue; pool processes forked
#: from it inherit it (a worker that only trains, or runs the shop's other tasks, loads no model).
_consumes_prodcat = False


@celeryd_after_setup.connect(weak=False, dispatch_uid="prodcat_django.worker_setup")
def _worker_setup(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    global _consumes_prodcat
    from prodcat_django.conf import prodcat_settings

    try:
        queues = set(instance.app.amqp.queues.consume_from or ())
    except AttributeError:
        queues = set()
    # No -Q at all: the worker consumes every queue the app knows, prodcat's among them.
    _consumes_prodcat = not queues or prodcat_settings.QUEUE in queues
    if _consumes_prodcat and prodcat_settings.PRELOAD_MODEL:
        _load_before_the_pool(instance)


def _load_before_the_pool(worker: Any) -> None:
    """Load the model in the worker's main process (celeryd_after_setup runs before the pool
    starts), so that "ready" means loaded: every pool process inherits the weights and its
    first task does not wait for a load. A failure is logged only: each pool process tries
    again, and the first task reports it the usual way (health row, stops consuming)."""
    from prodcat_django.services import warmup

    try:
        seconds = warmup.load_before_fork()
    except Exception as exc:
        logger.warning(
            "prodcat: could not load the model in the worker's main process: %s: %s",
            type(exc).__name__,
            exc,
        )
        return
    import torch

    logger.info(
        "prodcat: model loaded in the worker's main process in %.1f s, before the pool starts "
        "(torch threads %d)",
        seconds,
        torch.get_num_threads(),
    )
    if not _pool_sends_process_init(worker):
        # threads, gevent, eventlet: the main process runs the tasks, warm it here.
        warmup.start_warm_up("worker start")


def _pool_sends_process_init(worker: Any) -> bool:
    """Prefork and solo pools send worker_process_init (where _preload_model warms up)."""
    from celery.concurrency.prefork import TaskPool as PreforkPool
    from celery.concurrency.solo import TaskPool as SoloPool

    pool_cls = getattr(worker, "pool_cls", None)
    return isinstance(pool_cls, type) and issubclass(pool_cls, PreforkPool | SoloPool)


@worker_process_init.connect(weak=False, dispatch_uid="prodcat_django.worker_process_init")
def _preload_model(**kwargs: Any) -> None:
    """A pool process loads the model as it starts (in the background: the main process has
    it loaded already, so this is the warm-up pass), so its first task does not pay for it."""
    from prodcat_django.conf import prodcat_settings

    if _consumes_prodcat and prodcat_settings.PRELOAD_MODEL:
        from prodcat_django.services import warmup

        warmup.forget()  # a thread the parent started did not survive the fork
        warmup.start_warm_up("worker process start")
