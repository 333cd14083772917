"""The worker's run: claim rows, read the products, classify them in batches, store the results
and auto-accept where allowed. Loads the model (through :mod:`prodcat_django.classifier`) only
when called.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from prodcat_django.conf import prodcat_settings
from prodcat_django.fingerprint import compute_fingerprint, read_image_bytes
from prodcat_django.models import (
    DECIDED_STATUSES,
    OPEN_STATUSES,
    CategorySuggestion,
    DecisionAction,
    SuggestionStatus,
)
from prodcat_django.registry import ProductSpec, get_spec
from prodcat_django.services.requests import request_suggestion
from prodcat_django.services.review import apply_category, human_decided_category, record_decision

if TYPE_CHECKING:
    from prodcat_django.ml.predictor import Explanation

logger = logging.getLogger(__name__)


#: Runs of one suggestion before it is marked failed (each task delivery counts one).
MAX_ATTEMPTS = 3


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
        apply_category(product, spec, category)
        suggestion.status = SuggestionStatus.ACCEPTED
        suggestion.auto_accepted = True
        suggestion.save(update_fields=["status", "auto_accepted", "updated_at"])
        record_decision(suggestion, DecisionAction.AUTO_ACCEPTED, None, category.pk, previous)
    return True


def _explanation_json(explanation: Explanation) -> dict[str, Any]:
    return {
        "tokens": [[word, float(weight)] for word, weight in explanation.tokens],
        "regions": [[float(v) for v in row] for row in explanation.regions],
        "modality_weight": {k: float(v) for k, v in explanation.modality_weight.items()},
    }
