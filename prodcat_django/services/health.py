"""Worker health: what each worker last said about its model (``WorkerHealth`` rows).

A worker writes its row when it first loads the model in a process and whenever loading
fails, so a screen (the admin, a monitoring probe) can say "worker w1 has no model: <why>"
without asking the worker.
"""

from __future__ import annotations

import os
from typing import Any

from django.db import models

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
    """Health rows of workers whose last word was that they cannot load the model."""
    return WorkerHealth.objects.filter(model_loaded=False)
