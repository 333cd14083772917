"""Requesting suggestions: one product (the save signal), many (the bulk action, backfill), and
retiring a deleted product's. Rows are created here and sent after the transaction commits.

Every read of a product goes through its adapter (:mod:`prodcat_django.adapters`). Several
saves of one product's inputs in one transaction (the product, then its image formset) make
one suggestion: the row the transaction created is brought up to date in place, and one task
is sent at the commit. The row itself is written in the product's transaction, so a product
committed without its pending suggestion cannot happen (the sweep re-sends what was not sent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from prodcat_django import fingerprint as fingerprints
from prodcat_django.conf import prodcat_settings
from prodcat_django.fingerprint import product_fingerprint
from prodcat_django.models import (
    DECIDED_STATUSES,
    OPEN_STATUSES,
    CategorySuggestion,
    SuggestionBatch,
    SuggestionStatus,
)
from prodcat_django.registry import get_adapter, loaded_inputs
from prodcat_django.services import dispatching
from prodcat_django.services.review import change_permission

logger = logging.getLogger(__name__)


def request_suggestion(
    product: models.Model,
    *,
    force: bool = False,
    batch: SuggestionBatch | None = None,
) -> CategorySuggestion | None:
    """Queue a suggestion for ``product`` when its inputs changed (or ``force``).

    Computes the fingerprint of the adapter's text and image. When it equals the current
    suggestion's (or the current one is a bulk-queued row still waiting for the worker),
    nothing happens and None is returned. When the current one is a pending row this same
    transaction queued, its fingerprint is brought up to date and it is returned (one
    suggestion per product per transaction). Otherwise the current suggestion stops being
    current (it becomes ``obsolete``, unless it was accepted/rejected: the decision is kept), a
    ``pending`` one is created and the task is dispatched once the transaction commits.
    A product the adapter's ``should_suggest`` turns down gets none, and its current open or
    ready suggestion is retired.
    """
    adapter = get_adapter(product)
    if product.pk is None:
        raise ValueError("Save the product before requesting a suggestion for it")
    ct = adapter.content_type
    if not adapter.should_suggest(product):
        _retire_current(ct, str(product.pk))
        _clear_cached_suggestion(product, adapter.suggestion_attr)
        return None
    fingerprint = product_fingerprint(product, adapter)
    if not force and _unchanged(ct, str(product.pk), fingerprint):
        # The common save (price, stock, a category set by hand) of an instance this process
        # knows nothing of: one plain indexed read, no row lock and no transaction of our own.
        _clear_cached_suggestion(product, adapter.suggestion_attr)
        return None
    try:
        suggestion = _replace_current(ct, product, fingerprint, force=force, batch=batch)
    except IntegrityError:
        # A concurrent save of the same product created the current row first. Should that
        # row's inputs be older than the committed product, the worker's fingerprint check
        # retires it and requests a fresh one.
        logger.info(
            "prodcat: concurrent suggestion request for %s pk=%s", adapter.label, product.pk
        )
        return None
    _clear_cached_suggestion(product, adapter.suggestion_attr)
    return suggestion


def unchanged_since_known(product: models.Model) -> bool:
    """True when a save of ``product`` (not a create) changed none of its inputs and this
    process knows its current suggestion already answers for them: no query at all.

    Needs all three: the adapter's input fields hold the values the instance was loaded (or
    last saved) with (``registry.loaded_inputs``); this process read or committed the current
    suggestion's fingerprint (``fingerprint.known_current``, a bounded LRU); and the
    inputs' fingerprint, from the file cache (one ``stat`` of a stored photo), equals it.
    Anything else (a fresh process, another instance of the product saved since, a photo
    rewritten in place) is left to :func:`request_suggestion`. What another process changed
    is not seen: see docs/performance.md, "Unchanged saves".
    """
    loaded = loaded_inputs(product)
    if loaded is None or product.pk is None:
        return False
    adapter = get_adapter(product)
    if adapter.tracked_values(product) != loaded:
        return False
    known = fingerprints.known_current(adapter.content_type.pk, product.pk)
    if known is None or not adapter.should_suggest(product):
        return False
    if product_fingerprint(product, adapter) != known:
        return False
    _clear_cached_suggestion(product, adapter.suggestion_attr)
    return True


def _remember_on_commit(ct: ContentType, object_id: str, fingerprint: str) -> None:
    # Only once committed: a rolled-back suggestion must not be taken as the current one.
    transaction.on_commit(
        partial(fingerprints.remember_current, ct.pk, object_id, fingerprint), robust=True
    )


def _unchanged(ct: ContentType, object_id: str, fingerprint: str) -> bool:
    """True when the current suggestion already answers for these inputs, as the locked check
    in :func:`_replace_current` would decide (same fingerprint, or a bulk-queued row the worker
    fingerprints itself). Without a lock: a concurrent change makes a new current row, and the
    worker's fingerprint check catches a row whose product changed behind it."""
    row = (
        CategorySuggestion.objects.filter(content_type=ct, object_id=object_id, is_current=True)
        .values_list("fingerprint", "status")
        .first()
    )
    if row is None:
        return False
    current, status = row
    if current == fingerprint:
        _remember_on_commit(ct, object_id, fingerprint)
        return True
    return not current and status in OPEN_STATUSES


def _replace_current(
    ct: ContentType,
    product: models.Model,
    fingerprint: str,
    *,
    force: bool,
    batch: SuggestionBatch | None,
) -> CategorySuggestion | None:
    object_id = str(product.pk)
    with transaction.atomic():
        current = (
            CategorySuggestion.objects.select_for_update()
            .filter(content_type=ct, object_id=object_id, is_current=True)
            .first()
        )
        if current is not None and not force:
            if current.fingerprint == fingerprint:
                _remember_on_commit(ct, object_id, fingerprint)
                return None
            if not current.fingerprint and current.status in OPEN_STATUSES:
                return None  # bulk-queued: the worker reads the product as it is now
            if (
                current.status == SuggestionStatus.PENDING
                and current.batch_id == (batch.pk if batch else None)
                and dispatching.queued_in_this_transaction(current.pk)
            ):
                # A later save of the same transaction: one suggestion, for the final inputs.
                fingerprints.forget_current(ct.pk, [object_id])
                current.fingerprint = fingerprint
                current.save(update_fields=["fingerprint", "updated_at"])
                _remember_on_commit(ct, object_id, fingerprint)
                return current
        fingerprints.forget_current(ct.pk, [object_id])
        if current is not None:
            _retire([current.pk])
        suggestion = CategorySuggestion.objects.create(
            content_type=ct,
            object_id=object_id,
            fingerprint=fingerprint,
            batch=batch,
        )
        dispatching.dispatch_on_commit([suggestion.pk])
        _remember_on_commit(ct, object_id, fingerprint)
    return suggestion


def retry(suggestion: CategorySuggestion, *, user: Any) -> CategorySuggestion:
    """Ask again for a product whose current suggestion failed: a fresh pending suggestion,
    sent on commit (the failed one stays, obsolete, in the product's history).

    Needs ``change`` permission on the product's model (as requesting a suggestion does):
    ``PermissionDenied`` otherwise. ``ValidationError`` code ``not_failed`` for a suggestion
    that did not fail, ``not_current`` for one superseded already, ``no_product`` when its
    product was deleted.
    """
    model = suggestion.content_type.model_class()
    perm = change_permission(model) if model is not None else ""
    if not (user is not None and user.is_active and perm and user.has_perm(perm)):
        raise PermissionDenied(f"Retrying a suggestion needs the {perm or 'change'!r} permission.")
    suggestion = CategorySuggestion.objects.get(pk=suggestion.pk)
    if not suggestion.is_current:
        raise ValidationError(
            "This suggestion was superseded by a newer one; retry the product's current one.",
            code="not_current",
        )
    if suggestion.status != SuggestionStatus.FAILED:
        raise ValidationError(
            f"Only a failed suggestion can be retried; this one is "
            f"{suggestion.get_status_display()}.",
            code="not_failed",
        )
    try:
        product = get_adapter(model).model._default_manager.get(pk=suggestion.object_id)
    except (LookupError, models.ObjectDoesNotExist):
        raise ValidationError(
            "The product of this suggestion no longer exists.", code="no_product"
        ) from None
    fresh = request_suggestion(product, force=True)
    if fresh is None:  # a concurrent request made the current one first
        fresh = CategorySuggestion.objects.current_for(product).get()
    return fresh


def request_suggestions(
    queryset: models.QuerySet,
    *,
    user: Any = None,
    only_missing: bool = False,
    chunk_size: int | None = None,
    label: str = "",
    send: bool = True,
    progress: Callable[[int], object] | None = None,
) -> SuggestionBatch:
    """Queue suggestions for every product of ``queryset`` (the bulk path).

    Works on primary keys only, so "select all" over many thousands of products stays a few
    queries per chunk: pending rows are created with ``bulk_create`` and the worker computes
    their fingerprints when it reads the products. Each chunk of ``chunk_size`` products
    (default ``BULK_CHUNK_SIZE``) is committed in its own transaction and sent as one task.
    ``only_missing`` skips products whose current suggestion is pending, running, ready or
    decided (so failed, obsolete and never-suggested products are redone). ``send=False``
    creates the rows without sending tasks (``prodcat_backfill --sync`` runs them inline);
    ``progress(n)`` is called with the number of products handled after each chunk. Once the
    broker refuses a chunk, later chunks are not sent (their rows wait for the sweep), so a
    hung broker costs one ``BROKER_TIMEOUT``, not one per chunk.
    Returns the :class:`SuggestionBatch`, whose ``progress()`` can be watched.
    """
    adapter = get_adapter(queryset.model)
    chunk_size = int(chunk_size or prodcat_settings.BULK_CHUNK_SIZE)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    ct = adapter.content_type
    user = user if getattr(user, "is_authenticated", False) else None
    # Only the pks: a shop admin's prefetch_related() (Oscar's) would make iterator() refuse
    # to run without a chunk_size, and select_related() would join for nothing.
    pks_query = (
        adapter.suggestable(queryset)
        .prefetch_related(None)
        .select_related(None)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    pks = [str(pk) for pk in pks_query.iterator()]
    # Created once the selection is known, so a failing selection leaves no empty batch.
    batch = SuggestionBatch.objects.create(content_type=ct, created_by=user, label=label)
    total = 0
    sender = _ChunkSender() if send else None
    for start in range(0, len(pks), chunk_size):
        part = pks[start : start + chunk_size]
        try:
            total += _request_chunk(ct, part, batch, only_missing, sender)
        except IntegrityError:
            # A product of this chunk was saved concurrently; its new row is retired now.
            total += _request_chunk(ct, part, batch, only_missing, sender)
        if progress is not None:
            progress(len(part))
    batch.total = total
    batch.save(update_fields=["total"])
    return batch


class _ChunkSender:
    """Sends each chunk's task; after the first chunk the broker refuses, sends no more (each
    try would wait ``BROKER_TIMEOUT`` again): those rows stay pending, unsent, for the sweep."""

    def __init__(self) -> None:
        self.refused = False

    def __call__(self, ids: list[int]) -> None:
        if self.refused:
            return
        if not dispatching.dispatch(ids):
            self.refused = True


def _request_chunk(
    ct: ContentType,
    object_ids: list[str],
    batch: SuggestionBatch,
    only_missing: bool,
    sender: _ChunkSender | None,
) -> int:
    with transaction.atomic():
        current = CategorySuggestion.objects.select_for_update().filter(
            content_type=ct, object_id__in=object_ids, is_current=True
        )
        keep = (
            SuggestionStatus.PENDING,
            SuggestionStatus.RUNNING,
            SuggestionStatus.READY,
            *DECIDED_STATUSES,
        )
        if only_missing:
            covered = set(current.filter(status__in=keep).values_list("object_id", flat=True))
            object_ids = [oid for oid in object_ids if oid not in covered]
        if not object_ids:
            return 0
        # Bulk rows carry no fingerprint (the worker computes it): nothing is known of them.
        fingerprints.forget_current(ct.pk, object_ids)
        _retire(
            current.filter(object_id__in=object_ids).values_list("pk", flat=True),
        )
        created = CategorySuggestion.objects.bulk_create(
            [CategorySuggestion(content_type=ct, object_id=oid, batch=batch) for oid in object_ids]
        )
        ids = [s.pk for s in created]
        if sender is not None:
            transaction.on_commit(partial(sender, ids), robust=True)
    return len(ids)


def _retire(suggestion_ids: Iterable[int]) -> None:
    """Make suggestions non-current: obsolete unless they carry a decision."""
    ids = list(suggestion_ids)
    CategorySuggestion.objects.filter(pk__in=ids).exclude(status__in=DECIDED_STATUSES).update(
        status=SuggestionStatus.OBSOLETE, is_current=False, updated_at=timezone.now()
    )
    CategorySuggestion.objects.filter(pk__in=ids, is_current=True).update(
        is_current=False, updated_at=timezone.now()
    )


def product_deleted(product: models.Model) -> int:
    """Retire the current suggestion of a deleted product (history and decisions are kept)."""
    return _retire_current(get_adapter(product).content_type, str(product.pk))


def _retire_current(ct: ContentType, object_id: str) -> int:
    fingerprints.forget_current(ct.pk, [object_id])
    ids = list(
        CategorySuggestion.objects.filter(
            content_type=ct, object_id=object_id, is_current=True
        ).values_list("pk", flat=True)
    )
    _retire(ids)
    return len(ids)


def prefetch_current_suggestions(products: Sequence[models.Model]) -> None:
    """Fill ``product.<suggestion_attr>`` for many products of one model with one query."""
    if not products:
        return
    adapter = get_adapter(products[0])
    by_id = {
        s.object_id: s
        for s in CategorySuggestion.objects.filter(
            content_type=adapter.content_type,
            object_id__in=[str(p.pk) for p in products],
            is_current=True,
        )
    }
    cache_name = f"_prodcat_{adapter.suggestion_attr}_cache"
    for product in products:
        product.__dict__[cache_name] = by_id.get(str(product.pk))


def _clear_cached_suggestion(product: models.Model, suggestion_attr: str) -> None:
    product.__dict__.pop(f"_prodcat_{suggestion_attr}_cache", None)
