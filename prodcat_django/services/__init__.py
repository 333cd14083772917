"""The service layer: every entry point (signal, admin action, API view, management command,
Celery task) goes through these functions, so the rules live in one place:

- a product gets a new suggestion only when its inputs (title, image) changed, or on request;
- tasks are sent after the transaction commits, and a slow or down broker never fails the
  caller (the row stays pending with ``dispatched_at`` unset; :func:`dispatch_pending` sends it
  later);
- a worker writes a result once (idempotent) and drops stale work;
- a category a human decided is never overwritten by auto-accept.

Nothing here imports torch at module level; :func:`run_suggestions` and :func:`suggest` load
the model through :mod:`prodcat_django.classifier` when called. :func:`explain` never does: the
worker stores each suggestion's explanation beside its labels.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from prodcat_django.conf import prodcat_settings
from prodcat_django.fingerprint import compute_fingerprint, product_fingerprint, read_image_bytes
from prodcat_django.models import (
    DECIDED_STATUSES,
    OPEN_STATUSES,
    CategorySuggestion,
    DecisionAction,
    SuggestionBatch,
    SuggestionDecision,
    SuggestionStatus,
)
from prodcat_django.registry import ProductSpec, get_spec

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from prodcat_django.ml.predictor import Explanation, Prediction

    User = AbstractBaseUser | AnonymousUser

logger = logging.getLogger(__name__)

#: Runs of one suggestion before it is marked failed (each task delivery counts one).
MAX_ATTEMPTS = 3

#: The permission that allows accepting and rejecting suggestions.
REVIEW_PERMISSION = "prodcat_django.review_categorysuggestion"


@dataclass
class RunReport:
    """What one :func:`run_suggestions` call did, by suggestion id."""

    ready: list[int] = field(default_factory=list)
    auto_accepted: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    obsolete: list[int] = field(default_factory=list)
    # Ids not processed: unknown, or already finished by an earlier delivery of the task.
    skipped: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[int]]:
        return {
            "ready": self.ready,
            "auto_accepted": self.auto_accepted,
            "failed": self.failed,
            "obsolete": self.obsolete,
            "skipped": self.skipped,
        }


# --------------------------------------------------------------------------- requesting


def request_suggestion(
    product: models.Model,
    *,
    force: bool = False,
    batch: SuggestionBatch | None = None,
) -> CategorySuggestion | None:
    """Queue a suggestion for ``product`` when its inputs changed (or ``force``).

    Computes the fingerprint of the title and image. When it equals the current suggestion's
    (or the current one is a bulk-queued row still waiting for the worker), nothing happens and
    None is returned. Otherwise the current suggestion stops being current (it becomes
    ``obsolete``, unless it was accepted/rejected: the decision is kept), a ``pending`` one is
    created and the task is dispatched once the surrounding transaction commits.
    """
    spec = get_spec(product)
    if product.pk is None:
        raise ValueError("Save the product before requesting a suggestion for it")
    fingerprint = product_fingerprint(product, spec)
    ct = _content_type(spec)
    try:
        suggestion = _replace_current(ct, product, fingerprint, force=force, batch=batch)
    except IntegrityError:
        # A concurrent save of the same product created the current row first. Should that
        # row's inputs be older than the committed product, the worker's fingerprint check
        # retires it and requests a fresh one.
        logger.info("prodcat: concurrent suggestion request for %s pk=%s", spec.label, product.pk)
        return None
    _clear_cached_suggestion(product, spec)
    return suggestion


def _replace_current(
    ct: ContentType,
    product: models.Model,
    fingerprint: str,
    *,
    force: bool,
    batch: SuggestionBatch | None,
) -> CategorySuggestion | None:
    with transaction.atomic():
        current = (
            CategorySuggestion.objects.select_for_update()
            .filter(content_type=ct, object_id=str(product.pk), is_current=True)
            .first()
        )
        if current is not None and not force:
            if current.fingerprint == fingerprint:
                return None
            if not current.fingerprint and current.status in OPEN_STATUSES:
                return None  # bulk-queued: the worker reads the product as it is now
        if current is not None:
            _retire([current.pk])
        suggestion = CategorySuggestion.objects.create(
            content_type=ct,
            object_id=str(product.pk),
            fingerprint=fingerprint,
            batch=batch,
        )
        transaction.on_commit(partial(dispatch, [suggestion.pk]), robust=True)
    return suggestion


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
    ``progress(n)`` is called with the number of products handled after each chunk.
    Returns the :class:`SuggestionBatch`, whose ``progress()`` can be watched.
    """
    spec = get_spec(queryset.model)
    chunk_size = int(chunk_size or prodcat_settings.BULK_CHUNK_SIZE)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    ct = _content_type(spec)
    user = user if getattr(user, "is_authenticated", False) else None
    batch = SuggestionBatch.objects.create(content_type=ct, created_by=user, label=label)
    pks = [str(pk) for pk in queryset.order_by("pk").values_list("pk", flat=True).iterator()]
    total = 0
    for start in range(0, len(pks), chunk_size):
        part = pks[start : start + chunk_size]
        try:
            total += _request_chunk(ct, part, batch, only_missing, send)
        except IntegrityError:
            # A product of this chunk was saved concurrently; its new row is retired now.
            total += _request_chunk(ct, part, batch, only_missing, send)
        if progress is not None:
            progress(len(part))
    batch.total = total
    batch.save(update_fields=["total"])
    return batch


def _request_chunk(
    ct: ContentType, object_ids: list[str], batch: SuggestionBatch, only_missing: bool, send: bool
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
        _retire(
            current.filter(object_id__in=object_ids).values_list("pk", flat=True),
        )
        created = CategorySuggestion.objects.bulk_create(
            [CategorySuggestion(content_type=ct, object_id=oid, batch=batch) for oid in object_ids]
        )
        ids = [s.pk for s in created]
        if send:
            transaction.on_commit(partial(dispatch, ids), robust=True)
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
    spec = get_spec(product)
    ids = CategorySuggestion.objects.filter(
        content_type=_content_type(spec), object_id=str(product.pk), is_current=True
    ).values_list("pk", flat=True)
    ids = list(ids)
    _retire(ids)
    return len(ids)


# --------------------------------------------------------------------------- dispatching


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

    from prodcat_django.tasks import run_suggestions_task

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


# --------------------------------------------------------------------------- running


def run_suggestions(suggestion_ids: Sequence[int]) -> RunReport:
    """The worker's job: classify the products of ``suggestion_ids`` and store the results.

    Claims the open current rows (pending/running) and counts an attempt (a row fails after
    ``MAX_ATTEMPTS``); skips the others, so a redelivered task rewrites nothing. When the model
    cannot be loaded the rows go back to pending and the exception propagates. Per row: a
    deleted product or a non-current row becomes obsolete; a product whose inputs changed since
    the row was queued gets a fresh suggestion instead; an unreadable image fails that row only,
    with a readable error. The rest go through ``Predictor.explain_many`` in batches of
    ``TASK_BATCH_SIZE``, so each ready row stores its labels and its explanation (title words,
    7x7 photo regions, modality shares) from the same forward pass; each result is matched to
    a shop category by ``CATEGORY_MATCHER`` and auto-accepted when ``AUTO_ACCEPT`` is on, the
    prediction clears the checkpoint's threshold, a category matched, and no human decided the
    product's category.
    """
    report = RunReport()
    ids = sorted({int(pk) for pk in suggestion_ids})
    rows = {s.pk: s for s in CategorySuggestion.objects.filter(pk__in=ids)}
    report.skipped.extend(pk for pk in ids if pk not in rows)

    stale = [s.pk for s in rows.values() if not s.is_current and s.status in OPEN_STATUSES]
    _finish(stale, SuggestionStatus.OBSOLETE, error="superseded by a newer suggestion")
    report.obsolete.extend(stale)

    claim = [s.pk for s in rows.values() if s.is_current and s.status in OPEN_STATUSES]
    report.skipped.extend(pk for pk in rows if pk not in claim and pk not in stale)
    # A row whose task keeps dying (a worker killed mid-batch, again and again) gives up.
    given_up = [pk for pk in claim if rows[pk].attempts >= MAX_ATTEMPTS]
    _finish(given_up, SuggestionStatus.FAILED, error=f"gave up after {MAX_ATTEMPTS} attempts")
    report.failed.extend(given_up)
    claim = [pk for pk in claim if pk not in given_up]
    if claim:
        CategorySuggestion.objects.filter(pk__in=claim, status__in=OPEN_STATUSES).update(
            status=SuggestionStatus.RUNNING, attempts=F("attempts") + 1, updated_at=timezone.now()
        )

    by_type: dict[int, list[CategorySuggestion]] = defaultdict(list)
    for pk in claim:
        by_type[rows[pk].content_type_id].append(rows[pk])
    for ct_id, suggestions in by_type.items():
        _run_for_type(ContentType.objects.get_for_id(ct_id), suggestions, report)
    return report


def _run_for_type(
    ct: ContentType, suggestions: list[CategorySuggestion], report: RunReport
) -> None:
    from prodcat_django.ml.images import InvalidImageError, load_image

    model = ct.model_class()
    try:
        spec = get_spec(model) if model is not None else None
    except LookupError:
        spec = None
    if spec is None:
        ids = [s.pk for s in suggestions]
        _finish(ids, SuggestionStatus.FAILED, error=f"{ct} is not a registered product model")
        report.failed.extend(ids)
        return

    products = spec.model._default_manager.in_bulk([s.object_id for s in suggestions])
    products = {str(pk): obj for pk, obj in products.items()}
    work: list[tuple[CategorySuggestion, models.Model, str, Any]] = []
    for suggestion in suggestions:
        product = products.get(suggestion.object_id)
        if product is None:
            _finish([suggestion.pk], SuggestionStatus.OBSOLETE, error="the product was deleted")
            report.obsolete.append(suggestion.pk)
            continue
        title = spec.get_title(product)
        # One read of the image serves the fingerprint and the model. A file that cannot be
        # read fingerprints as "no image" (as product_fingerprint does) and fails the row below.
        unreadable: OSError | None = None
        try:
            data = read_image_bytes(product, spec)
        except OSError as exc:
            data, unreadable = None, exc
        fingerprint = compute_fingerprint(title, data)
        if suggestion.fingerprint and suggestion.fingerprint != fingerprint:
            # Changed behind the signal's back (queryset.update, raw SQL): redo it.
            _finish([suggestion.pk], SuggestionStatus.OBSOLETE, error="the product changed")
            report.obsolete.append(suggestion.pk)
            request_suggestion(product)
            continue
        if not suggestion.fingerprint:
            CategorySuggestion.objects.filter(pk=suggestion.pk).update(fingerprint=fingerprint)
        try:
            if unreadable is not None:
                raise unreadable
            image = (
                load_image(data, max_pixels=int(prodcat_settings.MAX_IMAGE_PIXELS))
                if data is not None
                else None
            )
        except (InvalidImageError, OSError) as exc:
            _finish([suggestion.pk], SuggestionStatus.FAILED, error=f"unreadable image: {exc}")
            report.failed.append(suggestion.pk)
            continue
        if not title.strip() and image is None:
            _finish(
                [suggestion.pk],
                SuggestionStatus.FAILED,
                error="the product has neither a title nor an image",
            )
            report.failed.append(suggestion.pk)
            continue
        work.append((suggestion, product, title, image))
    if not work:
        return

    from prodcat_django.classifier import get_predictor
    from prodcat_django.ml.predictor import ProductInput

    batch_size = int(prodcat_settings.TASK_BATCH_SIZE)
    try:
        predictor = get_predictor()
    except Exception:
        # The worker's setup is broken, not these products: leave them for a later run
        # (dispatch_pending) and let the task fail loudly.
        CategorySuggestion.objects.filter(
            pk__in=[s.pk for s, *_ in work], status=SuggestionStatus.RUNNING
        ).update(status=SuggestionStatus.PENDING, updated_at=timezone.now())
        raise
    try:
        explanations = predictor.explain_many(
            [ProductInput(title=title, image=image) for _, _, title, image in work],
            top_k=int(prodcat_settings.TOP_K),
            batch_size=batch_size,
        )
    except Exception as exc:
        logger.exception("prodcat: the model failed on %d product(s)", len(work))
        ids = [s.pk for s, *_ in work]
        _finish(ids, SuggestionStatus.FAILED, error=f"model error: {type(exc).__name__}: {exc}")
        report.failed.extend(ids)
        return

    info = predictor.info
    matcher = _cached_matcher(spec)
    for (suggestion, product, *_), explanation in zip(work, explanations, strict=True):
        prediction = explanation.prediction
        category = matcher(prediction.top.label)
        written = CategorySuggestion.objects.filter(
            pk=suggestion.pk, status=SuggestionStatus.RUNNING, is_current=True
        ).update(
            status=SuggestionStatus.READY,
            labels=[{"label": ls.label, "score": float(ls.score)} for ls in prediction.labels],
            label=prediction.top.label,
            score=float(prediction.top.score),
            category_pk="" if category is None else str(category.pk),
            model_name=info.name,
            model_version=info.version,
            explanation=_explanation_json(explanation),
            error="",
            updated_at=timezone.now(),
        )
        if not written:
            report.skipped.append(suggestion.pk)  # superseded or finished meanwhile
            continue
        report.ready.append(suggestion.pk)
        if (
            prodcat_settings.AUTO_ACCEPT
            and prediction.auto_accept
            and category is not None
            and _auto_accept(suggestion.pk, product, spec, category)
        ):
            report.auto_accepted.append(suggestion.pk)


def _cached_matcher(spec: ProductSpec) -> Any:
    from prodcat_django.matching import get_matcher

    matcher = get_matcher()
    category_model = spec.category_model
    cache: dict[str, Any] = {}

    def match(label: str) -> Any:
        if label not in cache:
            cache[label] = matcher(label, category_model)
        return cache[label]

    return match


def _finish(ids: Sequence[int], status: str, *, error: str = "") -> None:
    if ids:
        CategorySuggestion.objects.filter(pk__in=ids).exclude(
            status__in=(*DECIDED_STATUSES, SuggestionStatus.READY)
        ).update(status=status, error=error, updated_at=timezone.now())


def human_decided_category(product: models.Model, spec: ProductSpec | None = None) -> bool:
    """Whether the product's current category was chosen by a human.

    True when it is set and is not the category the latest auto-accept put there (a category a
    merchant typed into the product form counts as a human choice too), or when the product's
    latest decision was a human one.
    """
    spec = spec or get_spec(product)
    current = spec.get_category_pk(product)
    latest = (
        SuggestionDecision.objects.filter(
            content_type=_content_type(spec), object_id=str(product.pk)
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is not None and latest.is_human:
        return True
    if current is None or current == "":
        return False
    return latest is None or latest.category_pk != str(current)


def _auto_accept(
    suggestion_id: int, product: models.Model, spec: ProductSpec, category: models.Model
) -> bool:
    with transaction.atomic():
        product = spec.model._default_manager.select_for_update().get(pk=product.pk)
        suggestion = CategorySuggestion.objects.select_for_update().get(pk=suggestion_id)
        if suggestion.status != SuggestionStatus.READY or not suggestion.is_current:
            return False
        if human_decided_category(product, spec):
            return False
        previous = spec.get_category_pk(product)
        _set_category(product, spec, category)
        suggestion.status = SuggestionStatus.ACCEPTED
        suggestion.auto_accepted = True
        suggestion.save(update_fields=["status", "auto_accepted", "updated_at"])
        _record(suggestion, DecisionAction.AUTO_ACCEPTED, None, category.pk, previous)
    return True


# --------------------------------------------------------------------------- reviewing


def accept(
    suggestion: CategorySuggestion,
    *,
    user: Any,
    category: models.Model | Any | None = None,
) -> CategorySuggestion:
    """Accept ``suggestion``: set the product's category and record the decision.

    ``category`` (an instance or a primary key of the shop's category model) defaults to the
    category the suggestion's top label matched. Raises ``PermissionDenied`` without the
    ``prodcat_django.review_categorysuggestion`` permission and ``ValidationError`` when the
    suggestion is not ready (or decided), is no longer current, has no matched category, or
    the category does not exist. Returns the suggestion; the instance passed in is updated too.
    """
    _check_permission(user)
    with transaction.atomic():
        given = suggestion
        suggestion, product, spec = _lock_for_review(suggestion)
        if category is None:
            if not suggestion.category_pk:
                raise ValidationError(
                    f"No shop category matches the label {suggestion.label!r}; choose a "
                    "category (reject with a correction).",
                    code="no_category",
                )
            category = suggestion.category_pk
        category = _resolve_category(spec, category)
        previous = spec.get_category_pk(product)
        _set_category(product, spec, category)
        suggestion.status = SuggestionStatus.ACCEPTED
        suggestion.auto_accepted = False
        suggestion.reviewed_by = user
        suggestion.reviewed_at = timezone.now()
        suggestion.correction_pk = (
            "" if str(category.pk) == suggestion.category_pk else str(category.pk)
        )
        suggestion.save()
        _record(suggestion, DecisionAction.ACCEPTED, user, category.pk, previous)
    _copy_state(suggestion, given)
    return suggestion


def reject(
    suggestion: CategorySuggestion,
    *,
    user: Any,
    category: models.Model | Any | None = None,
    note: str = "",
) -> CategorySuggestion:
    """Reject ``suggestion``, optionally correcting the product to ``category``.

    Without ``category`` the product is left as it is; with one (instance or pk) the product's
    category is set to it and stored as the correction. Permission and validation as
    :func:`accept`; a failed suggestion may be rejected too (typically with a correction).
    """
    _check_permission(user)
    with transaction.atomic():
        given = suggestion
        suggestion, product, spec = _lock_for_review(suggestion, allow_failed=True)
        previous = spec.get_category_pk(product)
        resolved = _resolve_category(spec, category) if category is not None else None
        if resolved is not None:
            _set_category(product, spec, resolved)
        suggestion.status = SuggestionStatus.REJECTED
        suggestion.auto_accepted = False
        suggestion.reviewed_by = user
        suggestion.reviewed_at = timezone.now()
        suggestion.correction_pk = "" if resolved is None else str(resolved.pk)
        suggestion.note = note
        suggestion.save()
        _record(
            suggestion,
            DecisionAction.REJECTED,
            user,
            "" if resolved is None else resolved.pk,
            previous,
            note=note,
        )
    _copy_state(suggestion, given)
    return suggestion


def _copy_state(source: CategorySuggestion, target: CategorySuggestion) -> None:
    # The caller's instance shows the decision too (the service worked on a locked copy).
    if target is not source:
        target.__dict__.update(
            {f.attname: getattr(source, f.attname) for f in source._meta.concrete_fields}
        )
        target._state.fields_cache.clear()


def can_review(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(REVIEW_PERMISSION))


def _check_permission(user: Any) -> None:
    if not can_review(user):
        raise PermissionDenied("You do not have permission to review category suggestions.")


def _lock_for_review(
    suggestion: CategorySuggestion, *, allow_failed: bool = False
) -> tuple[CategorySuggestion, models.Model, ProductSpec]:
    suggestion = CategorySuggestion.objects.select_for_update().get(pk=suggestion.pk)
    allowed = {SuggestionStatus.READY, *DECIDED_STATUSES}
    if allow_failed:
        allowed.add(SuggestionStatus.FAILED)
    if not suggestion.is_current:
        raise ValidationError(
            "This suggestion was superseded by a newer one; review the product's current "
            "suggestion.",
            code="not_current",
        )
    if suggestion.status not in allowed:
        raise ValidationError(
            f"A {suggestion.get_status_display()} suggestion cannot be reviewed yet.",
            code="not_ready",
        )
    model = suggestion.content_type.model_class()
    try:
        spec = get_spec(model)
        product = spec.model._default_manager.select_for_update().get(pk=suggestion.object_id)
    except (LookupError, models.ObjectDoesNotExist):
        raise ValidationError("The product of this suggestion no longer exists.") from None
    return suggestion, product, spec


def _resolve_category(spec: ProductSpec, category: Any) -> models.Model:
    category_model = spec.category_model
    if isinstance(category, models.Model):
        if not isinstance(category, category_model):
            raise ValidationError(
                f"{category!r} is not a {category_model._meta.verbose_name}.", code="bad_category"
            )
        category = category.pk
    try:
        return category_model._default_manager.get(pk=category)
    except (category_model.DoesNotExist, ValueError, TypeError, ValidationError):
        raise ValidationError(
            f"There is no {category_model._meta.verbose_name} with id {category!r}.",
            code="bad_category",
        ) from None


def _set_category(product: models.Model, spec: ProductSpec, category: models.Model) -> None:
    setattr(product, spec.category_field, category)
    # update_fields: the post_save receiver sees that no input changed and does nothing.
    product.save(update_fields=[spec.category_field])


def _record(
    suggestion: CategorySuggestion,
    action: str,
    user: Any,
    category_pk: Any,
    previous_pk: Any,
    *,
    note: str = "",
) -> SuggestionDecision:
    return SuggestionDecision.objects.create(
        suggestion=suggestion,
        content_type_id=suggestion.content_type_id,
        object_id=suggestion.object_id,
        action=action,
        user=user if getattr(user, "is_authenticated", False) else None,
        username=user.get_username() if getattr(user, "is_authenticated", False) else "",
        from_label=suggestion.label,
        from_score=suggestion.score,
        category_pk="" if category_pk in (None, "") else str(category_pk),
        previous_category_pk="" if previous_pk in (None, "") else str(previous_pk),
        model_version=suggestion.model_version,
        note=note,
    )


# --------------------------------------------------------------------------- synchronous


def suggest(title: str, image_bytes: bytes | None, *, top_k: int | None = None) -> Prediction:
    """Classify a title and/or image now (the API's ``suggest`` endpoint).

    Raises ``ValidationError`` (a dict keyed by ``title``/``image``/``top_k``) for an empty
    input, an image over ``MAX_UPLOAD_BYTES`` or ``MAX_IMAGE_PIXELS``, undecodable image data,
    or a ``top_k`` outside 1..number of labels. Loads the model in this process on first use.
    """
    from prodcat_django.classifier import get_predictor
    from prodcat_django.ml.images import InvalidImageError, load_image
    from prodcat_django.ml.predictor import ProductInput

    title = (title or "").strip()
    if not title and not image_bytes:
        raise ValidationError({"title": ["Give a title, an image, or both."]})
    top_k = int(prodcat_settings.TOP_K if top_k is None else top_k)
    if top_k < 1:
        raise ValidationError({"top_k": ["top_k must be at least 1."]})
    image = None
    if image_bytes:
        limit = int(prodcat_settings.MAX_UPLOAD_BYTES)
        if len(image_bytes) > limit:
            raise ValidationError(
                {"image": [f"The image is {len(image_bytes)} bytes; the limit is {limit}."]}
            )
        try:
            image = load_image(image_bytes, max_pixels=int(prodcat_settings.MAX_IMAGE_PIXELS))
        except InvalidImageError as exc:
            raise ValidationError({"image": [str(exc)]}) from None
    predictor = get_predictor()
    n_labels = len(predictor.info.labels)
    if top_k > n_labels:
        raise ValidationError({"top_k": [f"top_k must be between 1 and {n_labels}."]})
    return predictor.predict([ProductInput(title=title, image=image)], top_k=top_k)[0]


@dataclass(frozen=True)
class StoredExplanation:
    """A suggestion's explanation as the worker stored it; torch-free, so the web process can
    show it. The fields mirror :class:`prodcat_django.ml.predictor.Explanation`, with the
    suggestion's own labels in place of the ``prediction``.
    """

    labels: tuple[tuple[str, float], ...]  # the suggestion's labels, best first
    tokens: tuple[tuple[str, float], ...]  # title words and weights (sum 1; empty: no title)
    regions: tuple[tuple[float, ...], ...]  # 7x7, row-major from top-left (sum 1; zeros: no image)
    modality_weight: dict[str, float]  # share of attention mass on "text" vs "image"


def _explanation_json(explanation: Explanation) -> dict[str, Any]:
    return {
        "tokens": [[word, float(weight)] for word, weight in explanation.tokens],
        "regions": [[float(v) for v in row] for row in explanation.regions],
        "modality_weight": {k: float(v) for k, v in explanation.modality_weight.items()},
    }


def explain(suggestion: CategorySuggestion) -> StoredExplanation:
    """Which title words and photo regions the model attended to for this suggestion.

    Reads what the worker stored with the suggestion (same forward pass as its labels); never
    loads the model. Raises ``ValidationError`` (code ``no_explanation``) when the row has none:
    not classified yet, failed, or classified before explanations were stored.
    """
    data = suggestion.explanation
    if not isinstance(data, dict):
        if suggestion.status in OPEN_STATUSES:
            message = "The suggestion is not ready yet; its explanation comes with it."
        elif suggestion.status == SuggestionStatus.FAILED:
            message = "The suggestion failed, so there is nothing to explain."
        else:
            message = (
                "This suggestion has no stored explanation (it was made before explanations "
                "were stored); ask for a new suggestion to get one."
            )
        raise ValidationError(message, code="no_explanation")
    try:
        return StoredExplanation(
            labels=tuple((str(d["label"]), float(d["score"])) for d in suggestion.labels or ()),
            tokens=tuple((str(word), float(w)) for word, w in data.get("tokens", ())),
            regions=tuple(tuple(float(v) for v in row) for row in data.get("regions", ())),
            modality_weight={
                str(k): float(v) for k, v in (data.get("modality_weight") or {}).items()
            },
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(
            f"The stored explanation is malformed ({exc}); ask for a new suggestion.",
            code="no_explanation",
        ) from None


# --------------------------------------------------------------------------- helpers


def prefetch_current_suggestions(products: Sequence[models.Model]) -> None:
    """Fill ``product.<suggestion_attr>`` for many products of one model with one query."""
    if not products:
        return
    spec = get_spec(products[0])
    by_id = {
        s.object_id: s
        for s in CategorySuggestion.objects.filter(
            content_type=_content_type(spec),
            object_id__in=[str(p.pk) for p in products],
            is_current=True,
        )
    }
    cache_name = f"_prodcat_{spec.suggestion_attr}_cache"
    for product in products:
        product.__dict__[cache_name] = by_id.get(str(product.pk))


def _clear_cached_suggestion(product: models.Model, spec: ProductSpec) -> None:
    product.__dict__.pop(f"_prodcat_{spec.suggestion_attr}_cache", None)


def _content_type(spec: ProductSpec) -> ContentType:
    return ContentType.objects.get_for_model(spec.model, for_concrete_model=True)
