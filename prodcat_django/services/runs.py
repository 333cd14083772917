"""The worker's run: claim rows under a lease, read the products, classify them pass by pass,
store the results and auto-accept where allowed. Loads the model (through
:mod:`prodcat_django.classifier`) only when called.

Recovery, in the order things go wrong:

- **Leases.** A claimed row is ``running`` with ``lease_owner`` (the Celery task id) and
  ``lease_until``, renewed before every forward pass. Its own redelivery (same task id) takes
  it back at once; anyone else only after the lease ran out, which the sweep
  (``dispatching.dispatch_pending``) notices and sends the row again. Writes are conditional
  on the lease, so a holder that lost it (it hung, someone else took over) writes nothing.
- **Crashes.** The rows of the pass being decoded/run are ``in_flight``. A row found in flight
  by the next claim was a suspect in its worker's death: ``crashes`` goes up, and suspects are
  then run one at a time after the rest, so only the culprit dies again; at ``MAX_CRASHES`` it
  fails with that reason instead of being tried again.
- **Hangs.** Each pass runs under a deadline (``TIME_LIMIT_PER_PRODUCT``); a pass that runs
  past it is retried product by product, and a product that hangs alone fails with that reason.
- **The model.** It is loaded before anything is claimed; when it cannot be, nothing is claimed,
  the worker's health record says why and :class:`ModelUnavailable` is raised (the task stops
  the worker taking prodcat tasks). The rows wait, pending, for a worker that can load it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from prodcat_django.adapters import ProductAdapter
from prodcat_django.conf import prodcat_settings
from prodcat_django.fingerprint import (
    ImageFileTooLarge,
    compute_fingerprint,
    fingerprint_of,
    product_fingerprint,
    read_image_bytes,
)
from prodcat_django.models import (
    DECIDED_STATUSES,
    OPEN_STATUSES,
    CategorySuggestion,
    DecisionAction,
    SuggestionStatus,
)
from prodcat_django.registry import get_adapter
from prodcat_django.services import health, neighbours
from prodcat_django.services.errors import without_paths
from prodcat_django.services.requests import request_suggestion
from prodcat_django.services.review import category_keys_text, record_decision
from prodcat_django.timeouts import StepTimeout, deadline, pass_time_limit
from prodcat_django.training.labels import LabelResolver

if TYPE_CHECKING:
    from prodcat_django.ml.predictor import Explanation, Predictor
    from prodcat_django.training.store import ActiveModel

logger = logging.getLogger(__name__)


#: Claims of one suggestion before it is marked failed, whatever happened to them (a safety
#: net: crash isolation, database retries and redeliveries each claim the row again).
MAX_ATTEMPTS = 10
#: Worker deaths with the row in flight before it is failed instead of tried again.
MAX_CRASHES = 3


# (predictor id, process id) pairs that ran their warm-up pass; the lock makes a task that
# arrives during the start-up warm-up (services.warmup) wait for it instead of running another.
_warmed: set[tuple[int, int]] = set()
_warm_lock = threading.Lock()


class ModelUnavailable(RuntimeError):
    """This worker cannot load the configured checkpoint; the message says why."""


@dataclass
class RunReport:
    """What one :func:`run_suggestions` call did, by suggestion id."""

    ready: list[int] = field(default_factory=list)
    auto_accepted: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    obsolete: list[int] = field(default_factory=list)
    # Ids not processed: unknown, finished by an earlier delivery, or held by another worker.
    skipped: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[int]]:
        return {
            "ready": self.ready,
            "auto_accepted": self.auto_accepted,
            "failed": self.failed,
            "obsolete": self.obsolete,
            "skipped": self.skipped,
        }


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class _Lease:
    owner: str
    predictor: Any = None
    # The active ModelVersion row the predictor belongs to (None: the built-in, no row yet).
    version: Any = None
    last_pass: float = 0.0

    def renew(self, in_flight: Sequence[int]) -> None:
        """Extend the lease of every row this run holds; mark ``in_flight`` as in the pass."""
        slack = float(prodcat_settings.LEASE_SECONDS) + 2 * self.last_pass
        held = CategorySuggestion.objects.filter(
            lease_owner=self.owner, status=SuggestionStatus.RUNNING
        )
        held.update(lease_until=timezone.now() + timedelta(seconds=slack))
        if in_flight:
            held.filter(pk__in=in_flight).update(in_flight=True)

    def held(self, pk: int) -> models.QuerySet:
        return CategorySuggestion.objects.filter(
            pk=pk, lease_owner=self.owner, status=SuggestionStatus.RUNNING, is_current=True
        )


def run_suggestions(
    suggestion_ids: Sequence[int],
    *,
    owner: str = "",
    worker: str = "",
    after_database_error: bool = False,
) -> RunReport:
    """The worker's job: classify the products of ``suggestion_ids`` and store the results.

    ``owner`` is the id of the delivery's task (its redelivery passes the same one); ``worker``
    names the worker in its health record. ``after_database_error`` says the previous try of
    this task stopped on a database error, so rows it left in flight are not crash suspects.

    Claims the open current rows it may (see the module docstring) and counts an attempt;
    skips the others, so a redelivered task rewrites nothing. Per row: a deleted product or a
    non-current row becomes obsolete; a product whose inputs changed since the row was queued
    gets a fresh suggestion instead; an unreadable image, a hang or a crash fails that row only,
    with a readable error. The rest go through ``Predictor.explain_many`` in passes of
    ``TASK_BATCH_SIZE`` (decoded a pass at a time), so each ready row stores its labels and its
    explanation from the same forward pass; each result is matched to a shop category by
    ``CATEGORY_MATCHER`` and auto-accepted when ``AUTO_ACCEPT`` is on, the prediction clears
    the checkpoint's threshold, a category matched, and no human decided the product's category.
    """
    report = RunReport()
    owner = owner or f"sync-{uuid.uuid4().hex}"
    ids = sorted({int(pk) for pk in suggestion_ids})
    rows = {s.pk: s for s in CategorySuggestion.objects.filter(pk__in=ids)}
    report.skipped.extend(pk for pk in ids if pk not in rows)

    stale = [s.pk for s in rows.values() if not s.is_current and s.status in OPEN_STATUSES]
    _finish(stale, SuggestionStatus.OBSOLETE, error="superseded by a newer suggestion")
    report.obsolete.extend(stale)

    now = timezone.now()
    claimable = [pk for pk, s in rows.items() if s.is_current and _claimable(s, owner, now)]
    report.skipped.extend(pk for pk in rows if pk not in claimable and pk not in stale)
    if not claimable:
        return report
    active = _load_model(worker or default_worker_name())
    lease = _Lease(owner=owner, predictor=active.predictor, version=active.version)

    suspects = [
        pk
        for pk in claimable
        if rows[pk].in_flight and not (after_database_error and rows[pk].lease_owner == owner)
    ]
    crashed_out = [pk for pk in suspects if rows[pk].crashes + 1 >= MAX_CRASHES]
    _finish(
        crashed_out,
        SuggestionStatus.FAILED,
        error=f"the worker process died {MAX_CRASHES} times while classifying this product "
        "(a crash, or a hang past the task's hard time limit); not tried again",
        crashes=F("crashes") + 1,
    )
    given_up = [
        pk for pk in claimable if pk not in crashed_out and rows[pk].attempts >= MAX_ATTEMPTS
    ]
    _finish(given_up, SuggestionStatus.FAILED, error=f"gave up after {MAX_ATTEMPTS} attempts")
    report.failed.extend(crashed_out + given_up)
    claim = [pk for pk in claimable if pk not in crashed_out and pk not in given_up]
    if suspects:
        CategorySuggestion.objects.filter(pk__in=[pk for pk in suspects if pk in claim]).update(
            crashes=F("crashes") + 1
        )
    if claim:
        claimed_now = timezone.now()
        CategorySuggestion.objects.filter(pk__in=claim).filter(_claim_q(owner, claimed_now)).update(
            status=SuggestionStatus.RUNNING,
            attempts=F("attempts") + 1,
            lease_owner=owner,
            lease_until=claimed_now + timedelta(seconds=float(prodcat_settings.LEASE_SECONDS)),
            in_flight=False,
            updated_at=claimed_now,
        )
    got = {
        s.pk: s
        for s in CategorySuggestion.objects.filter(
            pk__in=claim, lease_owner=owner, status=SuggestionStatus.RUNNING
        )
    }
    report.skipped.extend(pk for pk in claim if pk not in got)  # another worker was faster

    by_type: dict[int, list[CategorySuggestion]] = defaultdict(list)
    for pk in sorted(got):
        by_type[got[pk].content_type_id].append(got[pk])
    for ct_id, suggestions in by_type.items():
        _run_for_type(ContentType.objects.get_for_id(ct_id), suggestions, report, lease)
    return report


def _claimable(s: CategorySuggestion, owner: str, now: Any) -> bool:
    if s.status == SuggestionStatus.PENDING:
        return True
    if s.status != SuggestionStatus.RUNNING:
        return False
    return s.lease_owner == owner or s.lease_until is None or s.lease_until < now


def _claim_q(owner: str, now: Any) -> Q:
    """The same rule as :func:`_claimable`, in SQL, so two claimers never both win."""
    return Q(status=SuggestionStatus.PENDING) | Q(
        Q(lease_owner=owner) | Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        status=SuggestionStatus.RUNNING,
    )


def _load_model(worker: str) -> ActiveModel:
    from prodcat_django.classifier import checkpoint_path
    from prodcat_django.training.store import active_predictor

    try:
        # One query says which version is active; a newly activated one is loaded here and
        # the previous model dropped, so activation reaches running workers without a restart.
        active = active_predictor()
    except DatabaseError:
        raise  # the database is away (the task retries), not the model
    except Exception as exc:
        try:
            where = str(checkpoint_path())
        except Exception:
            where = ""
        reason = f"{type(exc).__name__}: {exc}"
        logger.error("prodcat: this worker cannot load its model (%s): %s", where, reason)
        health.record_model_unavailable(worker, where, reason)
        raise ModelUnavailable(reason) from exc
    health.record_model_loaded(worker, active.predictor.info)
    warm_up_predictor(active.predictor)
    return active


def warm_up_predictor(predictor: Predictor) -> None:
    """One pass on a dummy title, once per model and process: the first forward pass pays
    one-off costs (lazy tokenizer, kernel set-up) that must not count against a pass's
    deadline. Called through the class, so a test that wraps one instance counts real passes.
    """
    key = (id(predictor), os.getpid())
    if key in _warmed:
        return
    from prodcat_django.ml.predictor import ProductInput

    with _warm_lock:
        if key in _warmed:
            return
        type(predictor).explain_many(predictor, [ProductInput(title="warm-up")], top_k=1)
        _warmed.add(key)


def release(owner: str, *, in_flight_error: str) -> int:
    """Give up this run's claim (the task's soft time limit struck): rows in the pass fail with
    ``in_flight_error``, the others go back to pending, unsent, so the next sweep sends them
    at once. Returns how many went back."""
    held = CategorySuggestion.objects.filter(lease_owner=owner, status=SuggestionStatus.RUNNING)
    held.filter(in_flight=True).update(
        status=SuggestionStatus.FAILED,
        error=in_flight_error,
        in_flight=False,
        lease_until=None,
        updated_at=timezone.now(),
    )
    return held.update(
        status=SuggestionStatus.PENDING,
        dispatched_at=None,
        lease_until=None,
        lease_owner="",
        updated_at=timezone.now(),
    )


@dataclass
class _Item:
    """One product ready for the model: its photo decoded (reduced) and what to say about it."""

    suggestion: CategorySuggestion
    product: models.Model
    title: str
    image: Any  # PIL.Image.Image | None
    notice: str = ""  # why the photo was not used, stored with the ready row


def _run_for_type(
    ct: ContentType, suggestions: list[CategorySuggestion], report: RunReport, lease: _Lease
) -> None:
    model = ct.model_class()
    try:
        adapter = get_adapter(model) if model is not None else None
    except LookupError:
        adapter = None
    if adapter is None:
        ids = [s.pk for s in suggestions]
        _finish(ids, SuggestionStatus.FAILED, error=f"{ct} is not a registered product model")
        report.failed.extend(ids)
        return

    try:
        products = adapter.model._default_manager.in_bulk([s.object_id for s in suggestions])
        products = {str(pk): obj for pk, obj in products.items()}
        batch_size = max(1, int(prodcat_settings.TASK_BATCH_SIZE))
        # Suspects of an earlier crash go last and alone, so only the culprit can die again.
        trusted = [s for s in suggestions if not s.crashes]
        suspects = [s for s in suggestions if s.crashes]
        passes = [trusted[i : i + batch_size] for i in range(0, len(trusted), batch_size)]
        passes += [[s] for s in suspects]
        # Shop-trained versions predict category pks; the built-in one names (mapping + matcher).
        # A product that stores category names has no category rows: its adapter matches.
        matcher: Any = (
            LabelResolver(lease.version, lease.predictor.info.name, adapter.category_model)
            if adapter.category_model is not None
            else _NameLabels(adapter)
        )
        # The neighbour head (issue 10): this task's view of the index, refreshed once here.
        ranker = neighbours.Ranker(
            lease.predictor, adapter, matcher, labels=lease.predictor.info.labels
        )
        # Each pass reads, decodes (reduced) and classifies its products before the next one
        # reads anything: the worker holds one pass of photos, whatever the task's size.
        for group in passes:
            _run_pass(
                [(s, products.get(s.object_id)) for s in group], adapter, ranker, report, lease
            )
    except (DatabaseError, SoftTimeLimitExceeded):
        # No product's fault: the task retries a database error, and gives its rows back at
        # its soft time limit (services.release).
        raise
    except Exception as exc:
        # A bug outside any one product's step: fail what this run still holds, with the
        # reason, rather than leave it running for the sweep to redeliver into the same error.
        logger.exception("prodcat: the run of %d suggestion(s) failed", len(suggestions))
        left = list(
            CategorySuggestion.objects.filter(
                pk__in=[s.pk for s in suggestions],
                lease_owner=lease.owner,
                status=SuggestionStatus.RUNNING,
            ).values_list("pk", flat=True)
        )
        _finish(left, SuggestionStatus.FAILED, error=_reason("internal error", exc))
        report.failed.extend(left)


def _run_pass(
    group: list[tuple[CategorySuggestion, models.Model | None]],
    adapter: ProductAdapter,
    ranker: neighbours.Ranker,
    report: RunReport,
    lease: _Lease,
) -> None:
    lease.renew([suggestion.pk for suggestion, _ in group])
    limit = pass_time_limit(len(group))
    started = time.monotonic()
    try:
        with deadline(limit):
            items = []
            for suggestion, product in group:
                item = _guarded(
                    suggestion.pk,
                    report,
                    "reading the product",
                    _prepare,
                    suggestion,
                    product,
                    adapter,
                    report,
                )
                if item is not None:
                    items.append(item)
            results = _forward(items, lease.predictor, report) if items else []
    except StepTimeout:
        if len(group) > 1:
            logger.warning(
                "prodcat: a pass of %d products ran past %.0f s; retrying them one by one",
                len(group),
                limit,
            )
            for one in group:
                _run_pass([one], adapter, ranker, report, lease)
            return
        logger.warning("prodcat: suggestion %s timed out after %.0f s", group[0][0].pk, limit)
        _fail(
            group[0][0].pk,
            f"timed out: classifying this product took longer than {limit:g} s",
            report,
        )
        return
    lease.last_pass = time.monotonic() - started
    info = lease.predictor.info
    for item, explanation in results:
        _guarded(
            item.suggestion.pk,
            report,
            "storing the result",
            _store,
            item,
            explanation,
            info,
            adapter,
            ranker,
            report,
            lease,
        )


def _guarded(suggestion_id: int, report: RunReport, what: str, step: Any, *args: Any) -> Any:
    """Run one product's ``step``; an exception fails that row only, with a readable reason.

    Database errors, the pass's deadline and the task's soft time limit propagate: they are no
    one product's fault.
    """
    try:
        return step(*args)
    except (DatabaseError, StepTimeout, SoftTimeLimitExceeded):
        raise
    except Exception as exc:
        logger.exception("prodcat: suggestion %s failed while %s", suggestion_id, what)
        _fail(suggestion_id, _reason(f"{what} failed", exc), report)
        return None


def _text(pk: Any) -> str:
    return "" if pk in (None, "") else str(pk)


def _reason(what: str, exc: BaseException) -> str:
    return without_paths(f"{what}: {type(exc).__name__}: {exc}")


def _prepare(
    suggestion: CategorySuggestion,
    product: models.Model | None,
    adapter: ProductAdapter,
    report: RunReport,
) -> _Item | None:
    """Read one product and decode its photo; None when the row was finished here instead."""
    from prodcat_django.ml.images import (
        DECODE_SIZE,
        ImageTooLargeError,
        InvalidImageError,
        load_image,
    )

    if product is None:
        _finish([suggestion.pk], SuggestionStatus.OBSOLETE, error="the product was deleted")
        report.obsolete.append(suggestion.pk)
        return None
    if not adapter.should_suggest(product):
        _finish([suggestion.pk], SuggestionStatus.OBSOLETE, error="not suggested for")
        report.obsolete.append(suggestion.pk)
        return None
    title = adapter.get_text(product)
    source = adapter.get_image(product)
    remote = source is not None and source.is_remote
    # One read of a stored image serves the fingerprint and the model. A file that cannot be
    # read fingerprints as "no image" (as product_fingerprint does) and fails the row below.
    # An image at a URL is fingerprinted by its URL (as in the web process) and fetched only
    # once the row is known to be still wanted.
    unreadable: OSError | None = None
    too_big: ImageFileTooLarge | None = None
    data: bytes | None = None
    if not remote:
        try:
            data = read_image_bytes(
                product, adapter, max_bytes=int(prodcat_settings.MAX_IMAGE_FILE_BYTES)
            )
        except ImageFileTooLarge as exc:
            too_big = exc
        except OSError as exc:
            unreadable = exc
    if remote:
        fingerprint = fingerprint_of(title, source)
    elif too_big is not None:
        fingerprint = product_fingerprint(product, adapter)  # streams the file in chunks
    else:
        fingerprint = compute_fingerprint(title, data)
    if suggestion.fingerprint and suggestion.fingerprint != fingerprint:
        # Changed behind the signal's back (queryset.update, raw SQL): redo it.
        _finish([suggestion.pk], SuggestionStatus.OBSOLETE, error="the product changed")
        report.obsolete.append(suggestion.pk)
        request_suggestion(product)
        return None
    if not suggestion.fingerprint:
        CategorySuggestion.objects.filter(pk=suggestion.pk).update(fingerprint=fingerprint)

    def fail(error: str) -> None:
        _fail(suggestion.pk, without_paths(error), report)

    if remote:
        try:  # the guarded fetch: timeout, size cap, allowed schemes and hosts
            data = read_image_bytes(product, adapter)
        except OSError as exc:
            fail(f"unreadable image: {exc}")
            return None
    if unreadable is not None:
        name = source.describe() if source is not None else ""
        why = unreadable.strerror or unreadable
        fail(f"unreadable image: the file {name!r} cannot be read ({why})")
        return None
    image = None
    photo_problem = str(too_big) if too_big is not None else ""
    if data is not None:
        try:
            image = load_image(
                data, max_pixels=int(prodcat_settings.MAX_IMAGE_PIXELS), reduce_to=DECODE_SIZE
            )
        except ImageTooLargeError as exc:
            photo_problem = str(exc)
        except InvalidImageError as exc:
            fail(f"unreadable image: {exc}")
            return None
        finally:
            del data
    has_title = bool(title.strip())
    if photo_problem and not has_title:
        fail(f"the photo cannot be used ({photo_problem}) and the product has no title")
        return None
    if not has_title and image is None:
        fail("the product has neither a title nor an image")
        return None
    notice = (
        f"photo not used ({photo_problem}); suggested from the title alone" if photo_problem else ""
    )
    return _Item(suggestion, product, title, image, without_paths(notice))


def _forward(
    items: list[_Item], predictor: Any, report: RunReport
) -> list[tuple[_Item, Explanation]]:
    """One forward pass for the pass's products; if it raises, one pass per product, so a
    product the model chokes on fails alone, with the model's error as its reason."""
    from prodcat_django.ml.predictor import ProductInput

    top_k = int(prodcat_settings.TOP_K)
    inputs = [ProductInput(title=item.title, image=item.image) for item in items]
    try:
        explanations = predictor.explain_many(inputs, top_k=top_k, batch_size=len(inputs))
        return list(zip(items, explanations, strict=True))
    except (StepTimeout, SoftTimeLimitExceeded):
        raise
    except Exception as exc:
        if len(items) == 1:
            logger.exception("prodcat: the model failed on suggestion %s", items[0].suggestion.pk)
            _fail(items[0].suggestion.pk, _reason("the model failed", exc), report)
            return []
        logger.exception(
            "prodcat: the model failed on a pass of %d; running them one by one", len(items)
        )
    results = []
    for item, one in zip(items, inputs, strict=True):
        explanation = _guarded(
            item.suggestion.pk,
            report,
            "the model",
            lambda x: predictor.explain_many([x], top_k=top_k, batch_size=1)[0],
            one,
        )
        if explanation is not None:
            results.append((item, explanation))
    return results


def _store(
    item: _Item,
    explanation: Explanation,
    info: Any,
    adapter: ProductAdapter,
    ranker: neighbours.Ranker,
    report: RunReport,
    lease: _Lease,
) -> None:
    suggestion = item.suggestion
    prediction = explanation.prediction
    # The model's labels and the neighbour head's categories in one ranking, each with its
    # source; the verdict says whether the product fits any of them.
    ranking = ranker.rank(prediction)
    top = ranking.top
    category = top.category
    written = lease.held(suggestion.pk).update(
        status=SuggestionStatus.READY,
        labels=[label.as_json() for label in ranking.labels],
        label=top.label,
        score=top.score,
        category_pk=top.category_pk,
        out_of_taxonomy=ranking.out_of_taxonomy,
        ood_score=_float_or_none(getattr(prediction, "ood_score", None)),
        ood_threshold=_float_or_none(getattr(prediction, "ood_threshold", None)),
        ood_reason=str(getattr(prediction, "ood_reason", "") or "")[:200],
        embedding=ranking.embedding,
        embedding_id=ranking.embedding_id,
        model_name=info.name,
        model_version=info.version,
        explanation=_explanation_json(explanation),
        product_category_pk=_text(adapter.current_category_key(item.product)),
        error=item.notice,
        in_flight=False,
        lease_until=None,
        updated_at=timezone.now(),
    )
    if not written:
        report.skipped.append(suggestion.pk)  # superseded, or another worker took it over
        return
    report.ready.append(suggestion.pk)
    ranker.refile(item.product, ranking, suggestion.fingerprint)
    if (
        prodcat_settings.AUTO_ACCEPT
        and auto_acceptable(prediction, ranking)
        and category is not None
        and _auto_accept(suggestion.pk, item.product, adapter, category)
    ):
        report.auto_accepted.append(suggestion.pk)


def auto_acceptable(prediction: Any, ranking: neighbours.Ranking) -> bool:
    """The model's own top label cleared the checkpoint's threshold, and the product is not
    flagged as fitting none of the categories: a flagged suggestion is never auto-accepted,
    nor one whose top came from the neighbour head (a person confirms those)."""
    return bool(
        prediction.auto_accept
        and not ranking.out_of_taxonomy
        and not getattr(prediction, "out_of_taxonomy", False)
        and ranking.top.source == "model"
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _fail(pk: int, error: str, report: RunReport) -> None:
    _finish([pk], SuggestionStatus.FAILED, error=error)
    report.failed.append(pk)


def _finish(ids: Sequence[int], status: str, *, error: str = "", **extra: Any) -> None:
    if ids:
        CategorySuggestion.objects.filter(pk__in=ids).exclude(
            status__in=(*DECIDED_STATUSES, SuggestionStatus.READY)
        ).update(
            status=status,
            error=error,
            in_flight=False,
            lease_until=None,
            updated_at=timezone.now(),
            **extra,
        )


class _NameLabels:
    """For a product that stores category names: the adapter matches a label to a name."""

    def __init__(self, adapter: ProductAdapter) -> None:
        self.adapter = adapter
        self._cache: dict[str, Any] = {}

    def category(self, label: str) -> Any:
        if label not in self._cache:
            self._cache[label] = self.adapter.match_label(label)
        return self._cache[label]

    def display(self, label: str) -> str:
        return label


def _auto_accept(
    suggestion_id: int, product: models.Model, adapter: ProductAdapter, category: Any
) -> bool:
    with transaction.atomic():
        product = adapter.model._default_manager.select_for_update().get(pk=product.pk)
        suggestion = CategorySuggestion.objects.select_for_update().get(pk=suggestion_id)
        if suggestion.status != SuggestionStatus.READY or not suggestion.is_current:
            return False
        if adapter.is_human_decided(product):
            return False
        previous = category_keys_text(adapter.get_categories(product))
        with neighbours.deciding():  # an auto-accept is not learnt from
            adapter.apply_category(product, category)
        suggestion.status = SuggestionStatus.ACCEPTED
        suggestion.auto_accepted = True
        suggestion.save(update_fields=["status", "auto_accepted", "updated_at"])
        record_decision(
            suggestion, DecisionAction.AUTO_ACCEPTED, None, adapter.category_key(category), previous
        )
    return True


def _explanation_json(explanation: Explanation) -> dict[str, Any]:
    return {
        "tokens": [[word, float(weight)] for word, weight in explanation.tokens],
        "regions": [[float(v) for v in row] for row in explanation.regions],
        "modality_weight": {k: float(v) for k, v in explanation.modality_weight.items()},
    }
