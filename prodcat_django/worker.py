"""The Celery worker's heartbeat: a worker says it is alive even when its queue is empty.

Without it the admin could only tell "no worker" from suggestions that wait, so an idle but
healthy worker looked the same as none. Connected by ``AppConfig.ready()``:

- ``worker_ready`` (the worker's main process, once its consumer is connected): a timer on
  the worker's own timer (the event loop's, or Celery's timer thread) touches the worker's
  ``WorkerHealth`` row every ``PRODCAT["WORKER_HEARTBEAT"]`` seconds, but only while the
  worker consumes ``PRODCAT["QUEUE"]``: a worker that only runs the training queue, or one
  that stopped consuming prodcat's queue because it cannot load the model, does not count.
- ``worker_shutdown`` (a clean stop): the row is deleted, so the admin says at once that no
  worker runs. A worker killed outright is noticed ``WORKER_LOST_AFTER`` seconds later.

The heartbeat never breaks the worker: a database error is logged (once per outage) and the
next beat tries again. The connection is closed after each beat, so the main process holds
no database connection between beats (nor passes one on to a pool process forked later).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals
from django.db import connections

from prodcat_django.conf import prodcat_settings
from prodcat_django.services import health

logger = logging.getLogger(__name__)

#: The timer entry of this process's heartbeat (one worker per process).
_state: dict[str, Any] = {"entry": None, "failing": False}


def connect() -> None:
    """Connect the receivers (idempotent)."""
    signals.worker_ready.connect(start_heartbeat, dispatch_uid="prodcat_django.worker.ready")
    signals.worker_shutdown.connect(stop_heartbeat, dispatch_uid="prodcat_django.worker.shutdown")


def start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    """``worker_ready``: beat now, then every ``WORKER_HEARTBEAT`` seconds."""
    consumer = sender
    interval = health.heartbeat_interval()
    timer = getattr(consumer, "timer", None)
    if not interval or timer is None or _state["entry"] is not None:
        return
    beat(consumer)
    _state["entry"] = timer.call_repeatedly(interval, beat, (consumer,))
    logger.info(
        "prodcat: worker %s reports itself on %r every %.0f s",
        consumer.hostname,
        prodcat_settings.QUEUE,
        interval,
    )


def stop_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    """``worker_shutdown``: stop beating and say this worker is gone."""
    entry, _state["entry"] = _state["entry"], None
    if entry is None:
        return
    entry.cancel()
    hostname = getattr(sender, "hostname", None)
    if not hostname:
        return
    try:
        health.forget_worker(hostname)
    except Exception as exc:  # the database may be down at shutdown; the row then goes stale
        logger.warning("prodcat: could not remove the health row of %s: %s", hostname, exc)
    finally:
        _close_connection()


def consumes_queue(consumer: Any, queue: str) -> bool:
    """Whether ``consumer`` takes tasks from ``queue`` right now (False while reconnecting)."""
    task_consumer = getattr(consumer, "task_consumer", None)
    if task_consumer is None:
        return False
    try:
        return bool(task_consumer.consuming_from(queue))
    except Exception:  # a consumer being rebuilt after a broker outage
        return False


def beat(consumer: Any) -> bool:
    """Touch this worker's row if it consumes prodcat's queue; True when written."""
    queue = prodcat_settings.QUEUE
    if not consumes_queue(consumer, queue):
        return False
    try:
        health.record_heartbeat(consumer.hostname)
    except Exception as exc:
        if not _state["failing"]:
            logger.warning("prodcat: heartbeat of %s not written: %s", consumer.hostname, exc)
        _state["failing"] = True
        return False
    else:
        if _state["failing"]:
            logger.info("prodcat: heartbeat of %s written again", consumer.hostname)
        _state["failing"] = False
        return True
    finally:
        _close_connection()


def _close_connection() -> None:
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()
