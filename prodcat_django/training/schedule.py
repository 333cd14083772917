"""Continuous learning: one training at a time across machines, and "is a retrain due".

The lock is a :class:`~prodcat_django.models.TrainingLock` row: inserting it takes the lock on
every database (its primary key refuses a second insert), deleting it releases it, and a row
past ``TRAIN_LOCK_TIMEOUT`` (a machine that died mid-training) may be taken over.

A retrain is due when at least ``RETRAIN_MIN_NEW`` new human decisions, or newly categorized
products, accumulated since the active version was trained (:func:`retrain_due`).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from prodcat_django.adapters import ProductAdapter
from prodcat_django.conf import prodcat_settings
from prodcat_django.models import DecisionAction, SuggestionDecision, TrainingLock
from prodcat_django.training import store

LOCK_NAME = "prodcat-train"


class TrainingLocked(Exception):
    """Another training holds the lock."""

    def __init__(self, holder: str, since: Any) -> None:
        super().__init__(f"a training is already running ({holder}, since {since:%Y-%m-%d %H:%M})")
        self.holder, self.since = holder, since


@contextmanager
def training_lock(name: str = LOCK_NAME) -> Iterator[str]:
    """Hold the cross-machine training lock for the ``with`` block; raises
    :class:`TrainingLocked` when another process holds it."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    now = timezone.now()
    expires = now + timedelta(seconds=float(prodcat_settings.TRAIN_LOCK_TIMEOUT))
    try:
        with transaction.atomic():
            TrainingLock.objects.create(
                name=name, holder=holder, acquired_at=now, expires_at=expires
            )
    except IntegrityError:
        # Held: take it over only if it expired (its holder died), in one conditional update.
        taken = TrainingLock.objects.filter(name=name, expires_at__lt=now).update(
            holder=holder, acquired_at=now, expires_at=expires
        )
        if not taken:
            current = TrainingLock.objects.filter(name=name).first()
            raise TrainingLocked(
                current.holder if current else "unknown", current.acquired_at if current else now
            ) from None
    try:
        yield holder
    finally:
        TrainingLock.objects.filter(name=name, holder=holder).delete()


@dataclass(frozen=True)
class RetrainDue:
    due: bool
    new_decisions: int
    new_products: int
    needed: int

    def __str__(self) -> str:
        verdict = "due" if self.due else "not due"
        return (
            f"retrain {verdict}: {self.new_decisions} new decision(s), {self.new_products} newly "
            f"categorized product(s) since the active version (needs {self.needed})"
        )


def retrain_due(spec: ProductAdapter, *, needed: int | None = None) -> RetrainDue:
    """Whether enough new labels accumulated since the active version was trained.

    Counts human decisions made after its training, and labelled products beyond the number it
    was trained on (the built-in version counts as trained on none of the shop's products).
    """
    needed = int(prodcat_settings.RETRAIN_MIN_NEW if needed is None else needed)
    active = store.active_version()
    decisions = SuggestionDecision.objects.filter(content_type=spec.content_type).exclude(
        action=DecisionAction.AUTO_ACCEPTED
    )
    trained_on = 0
    if active is not None and not active.builtin:
        if active.trained_at is not None:
            decisions = decisions.filter(created_at__gt=active.trained_at)
        trained_on = active.dataset_size
    labelled = (
        spec.model._default_manager.exclude(**{f"{spec.category_field}__isnull": True}).count()
        if spec.category_field
        else 0
    )
    new_decisions = decisions.count()
    new_products = max(0, labelled - trained_on)
    return RetrainDue(
        due=max(new_decisions, new_products) >= needed,
        new_decisions=new_decisions,
        new_products=new_products,
        needed=needed,
    )


def retrain(
    model: str | None = None, *, if_due: bool = True, force: bool = False
) -> dict[str, Any]:
    """The ``prodcat.retrain`` task's job: under the lock, train a new version (when a retrain
    is due, with ``if_due``), gate it and activate it if it passes. Returns what happened."""
    from prodcat_django.training.dataset import product_spec
    from prodcat_django.training.trainer import train_new_version

    spec = product_spec(model)
    due = retrain_due(spec)
    if if_due and not due.due:
        return {"trained": False, "reason": str(due)}
    try:
        with training_lock():
            lines: list[str] = []
            outcome = train_new_version(spec, force=force, say=lines.append)
    except TrainingLocked as exc:
        return {"trained": False, "reason": str(exc)}
    return {
        "trained": True,
        "version": f"{outcome.version.name}:{outcome.version.version}",
        "activated": outcome.activated,
        "gate": outcome.comparison.get("passed"),
        "reasons": outcome.comparison.get("reasons", []),
        "seconds": outcome.seconds,
    }
