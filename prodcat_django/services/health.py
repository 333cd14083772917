"""Worker health: what each worker last said (``WorkerHealth`` rows, one per worker).

- A worker writes its row when it first loads the model in a process and whenever loading
  fails, so a screen (the admin, a monitoring probe) can say "worker w1 has no model: <why>"
  without asking the worker.
- While it consumes ``PRODCAT["QUEUE"]``, a worker's main process also touches its row every
  ``WORKER_HEARTBEAT`` seconds (:mod:`prodcat_django.worker`), idle or not, and deletes it on
  a clean shutdown: a row's ``updated_at`` is when the worker was last seen on that queue, so
  "no worker seen" does not depend on suggestions waiting.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.utils import timezone

from prodcat_django.conf import prodcat_settings
from prodcat_django.models import WorkerHealth

# (worker, checkpoint path, version) already recorded as loaded by this process.
_recorded: set[tuple[str, str, str, int]] = set()


def record_model_loaded(worker: str, info: Any) -> None:
    """Note that ``worker`` runs ``info``'s checkpoint (one write per process and model)."""
    key = (worker, str(info.path), str(info.version), os.getpid())
    if key in _recorded:
        return
    WorkerHealth.objects.update_or_create(
        hostname=worker[:255],
        defaults={
            "pid": os.getpid(),
            "checkpoint": str(info.path)[:500],
            "model_loaded": True,
            "model_name": str(info.name)[:100],
            "model_version": str(info.version)[:50],
            "error": "",
        },
    )
    _recorded.add(key)


def record_model_unavailable(worker: str, checkpoint: str, error: str) -> None:
    """Note that ``worker`` cannot load ``checkpoint``, and why."""
    _recorded.difference_update({key for key in _recorded if key[0] == worker})
    WorkerHealth.objects.update_or_create(
        hostname=worker[:255],
        defaults={
            "pid": os.getpid(),
            "checkpoint": checkpoint[:500],
            "model_loaded": False,
            "model_name": "",
            "model_version": "",
            "error": error,
        },
    )


def workers_without_model() -> models.QuerySet:
    """Health rows of workers whose last word was that they cannot load the model (a row
    only a heartbeat wrote has no model yet, and no error: it is not one of them)."""
    return WorkerHealth.objects.filter(model_loaded=False).exclude(error="")


def record_heartbeat(worker: str) -> None:
    """Note that ``worker`` is alive and consuming prodcat's queue now (one UPDATE; an INSERT
    the first time). The model fields are left as the worker's processes wrote them."""
    hostname = worker[:255]
    now = timezone.now()
    if WorkerHealth.objects.filter(hostname=hostname).update(updated_at=now):
        return
    try:
        with transaction.atomic():
            WorkerHealth.objects.create(hostname=hostname, pid=os.getpid())
    except IntegrityError:  # a pool process wrote the row in between
        WorkerHealth.objects.filter(hostname=hostname).update(updated_at=now)


def forget_worker(worker: str) -> None:
    """The worker stopped cleanly: it is no longer seen on the queue."""
    WorkerHealth.objects.filter(hostname=worker[:255]).delete()


def heartbeat_interval() -> float:
    """Seconds between two heartbeats of a worker (0: heartbeats are off)."""
    return max(0.0, float(prodcat_settings.WORKER_HEARTBEAT or 0))


def expects_heartbeats() -> bool:
    """Whether "no worker seen" can be told from the rows: heartbeats are on, and tasks go
    through a broker (with ``task_always_eager`` the web process runs them, no worker needed).
    """
    if not heartbeat_interval():
        return False
    from celery import current_app

    return not current_app._get_current_object().conf.task_always_eager


def last_seen() -> datetime | None:
    """When a worker was last seen on prodcat's queue (None: never, or all stopped cleanly)."""
    return WorkerHealth.objects.aggregate(last=Max("updated_at"))["last"]


def worker_seen(now: datetime | None = None) -> bool:
    """Whether some worker was seen on prodcat's queue within ``WORKER_LOST_AFTER`` seconds."""
    seen = last_seen()
    if seen is None:
        return False
    lost_after = timedelta(seconds=float(prodcat_settings.WORKER_LOST_AFTER))
    return seen >= (now or timezone.now()) - lost_after
