"""The neighbour head beside the trained model: learn from each decision at once, and suggest
categories the model cannot predict (issue 10).

Web side (no torch):

- :func:`decision_made` (called by ``services.review`` when a merchant accepts, or rejects
  with a correction) files the product in the index once the transaction commits, with the
  vector the worker stored on the suggestion; without one, a small worker task computes it.
- :func:`product_saved` (the ``post_save`` receiver): a category a human set on the product
  form is filed the same way, by the worker. Saves made by a decision or an auto-accept are
  skipped (:func:`deciding`); an auto-accept is the model's own guess and is not learnt from.
- :func:`catalogue_refs` lists the catalogue's categorized products for ``manage.py
  prodcat_index``, which queues them (:func:`dispatch_index`) or files them at once.

Worker side (loads the model through the caller):

- :func:`index_products`: vectors for products (``Predictor.embed``), filed under their
  current categories.
- :func:`sync_names`: a vector per category name (with the merchant's optional
  :class:`~prodcat_django.models.CategoryDescription`) from ``Predictor.embed_texts``: the
  stand-in for categories without products.
- :func:`Ranker`: the head's scores merged with the model's into one ranking
  (:func:`prodcat_django.ml.knn.merge`), each label saying where it came from, and the
  out-of-taxonomy verdict of the whole ranking.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, models, transaction

from prodcat_django.adapters import ProductAdapter
from prodcat_django.conf import prodcat_settings
from prodcat_django.index import store
from prodcat_django.index.memory import clear_backends, get_backend
from prodcat_django.index.vectors import from_bytes, to_bytes
from prodcat_django.models import (
    CategoryDescription,
    CategorySuggestion,
    NeighbourSource,
    NeighbourVector,
)
from prodcat_django.registry import get_adapter, is_registered, registered_adapters

logger = logging.getLogger(__name__)

#: The name under which :mod:`prodcat_django.tasks` registers the index task.
INDEX_TASK = "prodcat.index_products"

#: What a label's ``source`` says to a merchant.
SOURCE_TEXT = {
    "model": "",
    "neighbours": "from similar products",
    "name": "from the category name",
}

_deciding: contextvars.ContextVar[bool] = contextvars.ContextVar("prodcat_deciding", default=False)
# (embedding id, category type) -> monotonic time of this process's last name sync.
_names_synced: dict[tuple[str, int], float] = {}


#: Longest embedding id stored as it is (the columns' width); a longer one is stored as its
#: sha256, so the same space always has the same key.
EMBEDDING_KEY_LENGTH = 100


def embedding_key(predictor: Any) -> str:
    """What the suggestion and index rows store for ``predictor.embedding_id`` ("" without
    one): the id itself, or ``sha256:<hex>`` when it is longer than the column."""
    value = str(getattr(predictor, "embedding_id", "") or "")
    if len(value) <= EMBEDDING_KEY_LENGTH:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def enabled() -> bool:
    return bool(prodcat_settings.NEIGHBOURS)


@contextmanager
def deciding() -> Iterator[None]:
    """Saves of a product inside are a decision's (or an auto-accept's): the decision files the
    product itself, so :func:`product_saved` leaves them alone."""
    token = _deciding.set(True)
    try:
        yield
    finally:
        _deciding.reset(token)


def reset() -> None:
    """Forget this process's in-memory indexes, name syncs and remembered filings (tests; a
    rewound database)."""
    clear_backends()
    _names_synced.clear()
    store.forget_known_categories()


# ── web side ──────────────────────────────────────────────────────────────────────────────


def decision_made(suggestion: CategorySuggestion, source: str) -> None:
    """File the decided product under its categories once the transaction commits (nothing
    happens on a rollback). Never fails the decision: trouble is logged."""
    if not enabled():
        return
    pk = suggestion.pk
    transaction.on_commit(lambda: _guard(_file_decided, pk, source), robust=True)


def _file_decided(suggestion_id: int, source: str) -> None:
    suggestion = CategorySuggestion.objects.filter(pk=suggestion_id).first()
    if suggestion is None:
        return
    model = suggestion.content_type.model_class()
    if model is None or not is_registered(model):
        return
    adapter = get_adapter(model)
    product = adapter.model._default_manager.filter(pk=suggestion.object_id).first()
    if product is None:
        return
    if suggestion.embedding and suggestion.embedding_id and suggestion.is_current:
        vector = from_bytes(suggestion.embedding)
        file_product(
            adapter, product, vector, suggestion.embedding_id, source, suggestion.fingerprint
        )
    else:
        dispatch_index([(suggestion.content_type_id, suggestion.object_id, source)])


def product_saved(product: models.Model, adapter: ProductAdapter) -> None:
    """A product was saved: when its categories differ from those it is filed under in the
    index and a human chose them, refile it (in the worker, after the commit). A small
    query per save (none once this process read the product's filed categories and they
    still match); nothing when the neighbour head is off or a decision is saving."""
    if not enabled() or _deciding.get() or adapter.category_model is None:
        return
    ct_id = adapter.content_type.pk
    keys = _category_keys(adapter, product)
    if store.known_active_categories(ct_id, product.pk) == keys:
        return  # as this process last read it: the common save asks the database nothing
    if keys == store.active_categories(ct_id, product.pk):
        transaction.on_commit(
            partial(store.remember_active_categories, ct_id, product.pk, keys), robust=True
        )
        return
    if not keys:
        store.remove_object(ct_id, product.pk)
        return
    if not adapter.is_human_decided(product):
        return
    refs = [(ct_id, str(product.pk), NeighbourSource.MERCHANT.value)]
    transaction.on_commit(lambda: _guard(dispatch_index, refs), robust=True)


def product_deleted(product: models.Model, adapter: ProductAdapter) -> None:
    """Drop a deleted product's vectors."""
    if enabled():
        store.remove_object(adapter.content_type.pk, product.pk)


def dispatch_index(refs: Sequence[tuple[int, str, str]]) -> bool:
    """Send ``prodcat.index_products`` for ``[(content_type_id, object_id, source)]`` on the
    prodcat queue (inline under eager tests). False, logged, when the broker refused it:
    ``manage.py prodcat_index --only-missing`` files such products later."""
    if not refs:
        return True
    from celery import current_app
    from kombu.exceptions import KombuError

    task = current_app.tasks[INDEX_TASK]
    payload = [[int(ct), str(obj), str(source)] for ct, obj, source in refs]
    timeout = float(prodcat_settings.BROKER_TIMEOUT)
    try:
        if task.app.conf.task_always_eager:
            task.apply_async(args=[payload], queue=prodcat_settings.QUEUE)
            return True
        with task.app.connection_for_write(
            connect_timeout=timeout,
            transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            task.apply_async(
                args=[payload],
                queue=prodcat_settings.QUEUE,
                producer=task.app.amqp.Producer(conn),
                retry=False,
            )
    except (KombuError, OSError, TimeoutError) as exc:
        logger.warning(
            "prodcat: could not send %d product(s) to the neighbour index (%s: %s); run "
            "manage.py prodcat_index --only-missing",
            len(payload),
            type(exc).__name__,
            exc,
        )
        return False
    return True


def catalogue_refs(
    queryset: models.QuerySet, *, only_missing: bool = False
) -> list[tuple[int, str, str]]:
    """``[(content_type_id, object_id, "catalogue")]`` for the categorized products of
    ``queryset`` (``only_missing``: those not filed in the index yet), by primary key."""
    adapter = get_adapter(queryset.model)
    ct_id = adapter.content_type.pk
    uncategorized = adapter.uncategorized(queryset).values("pk")
    pks = [
        str(pk)
        for pk in queryset.exclude(pk__in=uncategorized).order_by("pk").values_list("pk", flat=True)
    ]
    if only_missing:
        filed = set(
            NeighbourVector.objects.filter(content_type_id=ct_id, active=True)
            .exclude(source=NeighbourSource.NAME)
            .values_list("object_id", flat=True)
        )
        pks = [pk for pk in pks if pk not in filed]
    return [(ct_id, pk, NeighbourSource.CATALOGUE.value) for pk in pks]


def _guard(func: Any, *args: Any) -> None:
    try:
        func(*args)
    except Exception:
        if getattr(settings, "DEBUG_PROPAGATE_EXCEPTIONS", False):
            raise
        logger.exception("prodcat: could not update the neighbour index")


def _category_keys(adapter: ProductAdapter, product: models.Model) -> set[str]:
    return {str(k) for k in adapter.get_categories(product) if k and not adapter.is_placeholder(k)}


# ── storage of one product ────────────────────────────────────────────────────────────────


def file_product(
    adapter: ProductAdapter,
    product: models.Model,
    vector: Any,
    embedding_id: str,
    source: str,
    fingerprint: str = "",
) -> int:
    """Make ``vector`` the product's only vector, filed under each of its current categories
    (none: it leaves the index). Returns the index revision."""
    ct_id = adapter.content_type.pk
    category_type = _category_type_id(adapter)
    keys = sorted(_category_keys(adapter, product))
    entries = [
        store.VectorEntry(
            content_type_id=ct_id,
            object_id=str(product.pk),
            category_type_id=category_type,
            category_pk=key,
            source=source,
            vector=vector,
            embedding_id=embedding_id,
            fingerprint=fingerprint,
        )
        for key in keys
    ]
    return store.put_object(ct_id, product.pk, entries)


def _category_type_id(adapter: ProductAdapter) -> int | None:
    model = adapter.category_model
    return None if model is None else _fresh_content_type(model).pk


def _pool_types(adapter: ProductAdapter) -> list[int]:
    """Content type ids of the registered product models filed under ``adapter``'s category
    model: their undecided products are the pool of the head's name-only categories."""
    return [
        other.content_type.pk
        for other in registered_adapters()
        if other.category_model is adapter.category_model
    ]


def _fresh_content_type(model: type[models.Model]) -> ContentType:
    """The model's content type read from the database, not the per-process cache: a
    long-lived worker must not write the id of a content type that was re-created since it
    started (a database flush or restore); a stale id fails the whole task on the foreign key."""
    opts = model._meta.concrete_model._meta
    return ContentType.objects.get_or_create(app_label=opts.app_label, model=opts.model_name)[0]


# ── worker side ───────────────────────────────────────────────────────────────────────────


def run_index(refs: Sequence[Sequence[Any]]) -> int:
    """The ``prodcat.index_products`` task: :func:`index_products` with the active model."""
    from prodcat_django.training.store import active_predictor

    return index_products(refs, active_predictor().predictor)


def index_products(refs: Sequence[Sequence[Any]], predictor: Any) -> int:
    """The worker's job for ``[(content_type_id, object_id, source)]``: embed each product's
    title and photo and file it under its current categories. Products that are gone, or whose
    photo cannot be read, are filed from what is readable (the title) or skipped; returns how
    many were filed."""
    from prodcat_django.fingerprint import product_fingerprint, read_image_bytes
    from prodcat_django.ml.images import DECODE_SIZE, InvalidImageError, load_image
    from prodcat_django.ml.predictor import ProductInput

    by_type: dict[int, dict[str, str]] = defaultdict(dict)
    for ct_id, object_id, source in refs:
        by_type[int(ct_id)][str(object_id)] = str(source)
    filed = 0
    for ct_id, sources in by_type.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        if model is None or not is_registered(model):
            continue
        adapter = get_adapter(model)
        products = adapter.model._default_manager.in_bulk(list(sources))
        items, inputs = [], []
        for pk, product in products.items():
            title = adapter.get_text(product)
            image = None
            try:
                data = read_image_bytes(
                    product, adapter, max_bytes=int(prodcat_settings.MAX_IMAGE_FILE_BYTES)
                )
                if data is not None:
                    image = load_image(
                        data,
                        max_pixels=int(prodcat_settings.MAX_IMAGE_PIXELS),
                        reduce_to=DECODE_SIZE,
                    )
            except (OSError, InvalidImageError) as exc:
                logger.warning("prodcat: index: photo of %s %s not used: %s", model, pk, exc)
            if not title.strip() and image is None:
                continue
            items.append(product)
            inputs.append(ProductInput(title=title, image=image))
        batch = max(1, int(prodcat_settings.TASK_BATCH_SIZE))
        for start in range(0, len(inputs), batch):
            vectors = predictor.embed(inputs[start : start + batch])
            for product, vector in zip(items[start : start + batch], vectors, strict=True):
                file_product(
                    adapter,
                    product,
                    vector,
                    embedding_key(predictor),
                    sources[str(product.pk)],
                    product_fingerprint(product, adapter),
                )
                filed += 1
    return filed


def name_text(label: str, description: str = "") -> str:
    """What is embedded for a category: its name (its full path in a tree) and description."""
    return f"{label}. {description.strip()}" if description.strip() else label


def sync_names(adapter: ProductAdapter, predictor: Any, *, force: bool = False) -> int:
    """Give every category of the adapter's category model an up-to-date name vector (and drop
    those of deleted categories); at most every ``NEIGHBOUR_NAME_SYNC_SECONDS`` per process
    unless ``force``. Returns how many vectors were written."""
    model = adapter.category_model
    if model is None:
        return 0
    ct = _fresh_content_type(model)
    key = (embedding_key(predictor), ct.pk)
    now = time.monotonic()
    wait = float(prodcat_settings.NEIGHBOUR_NAME_SYNC_SECONDS)
    if not force and key in _names_synced and now - _names_synced[key] < wait:
        return 0
    _names_synced[key] = now
    categories = list(model._default_manager.all())
    labels = adapter.categories.labels_of(categories)
    descriptions = dict(
        CategoryDescription.objects.filter(category_type=ct).values_list(
            "category_pk", "description"
        )
    )
    wanted = {}
    for category in categories:
        pk = str(category.pk)
        if adapter.is_placeholder(pk):
            continue
        wanted[pk] = name_text(labels[category.pk], descriptions.get(pk, ""))
    rows = NeighbourVector.objects.filter(
        content_type=ct, source=NeighbourSource.NAME, embedding_id=embedding_key(predictor)
    )
    have = dict(rows.filter(active=True).values_list("object_id", "fingerprint"))
    todo = {pk: text for pk, text in wanted.items() if have.get(pk) != _text_hash(text)}
    for gone in set(have) - set(wanted):
        store.remove_object(ct.pk, gone)
    if not todo:
        return 0
    pks = list(todo)
    vectors = predictor.embed_texts([todo[pk] for pk in pks])
    store.put_entries(
        [
            store.VectorEntry(
                content_type_id=ct.pk,
                object_id=pk,
                category_type_id=ct.pk,
                category_pk=pk,
                source=NeighbourSource.NAME.value,
                vector=vector,
                embedding_id=embedding_key(predictor),
                fingerprint=_text_hash(todo[pk]),
            )
            for pk, vector in zip(pks, vectors, strict=True)
        ]
    )
    return len(pks)


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class RankedLabel:
    label: str  # what the merchant reads
    score: float
    source: str  # "model" | "neighbours" | "name"
    category_pk: str = ""  # the shop category ("" when the model's label matched none)
    category: Any = None

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "score": float(self.score), "source": self.source}


@dataclass
class Ranking:
    labels: list[RankedLabel]
    out_of_taxonomy: bool
    embedding: bytes | None = None
    embedding_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def top(self) -> RankedLabel:
        return self.labels[0]


class Ranker:
    """One worker run's ranking for one product model: the model's labels matched to shop
    categories, the head's scores for the categories the model cannot predict, one ranking
    (:func:`prodcat_django.ml.knn.merge`). Built per task: its index is refreshed once, its
    label matches are cached for the task."""

    def __init__(
        self, predictor: Any, adapter: ProductAdapter, matcher: Any, *, labels: Sequence[str]
    ) -> None:
        self.predictor, self.adapter, self.matcher = predictor, adapter, matcher
        self.embedding_id = embedding_key(predictor)
        self.backend: Any = None
        self._matched: dict[str, Any] = {}
        # label -> category key, for the labels a shop category matches: what the model covers.
        self.model_keys: dict[str, str] = {}
        for label in labels:
            category = self._match(label)
            if category is not None:
                self.model_keys[label] = adapter.category_key(category)
        if enabled() and self.embedding_id and adapter.category_model is not None:
            try:
                sync_names(adapter, predictor)
                backend = get_backend(self.embedding_id, _category_type_id(adapter))
                if hasattr(backend, "use_pool"):  # optional in NeighbourBackend
                    backend.use_pool(_pool_types(adapter))
                backend.refresh()
                self.backend = backend
            except DatabaseError:
                raise  # the task retries; not the head's fault
            except Exception:
                # The head is an addition: without it the model's suggestion still stands.
                if getattr(settings, "DEBUG_PROPAGATE_EXCEPTIONS", False):
                    raise
                logger.exception("prodcat: the neighbour index is unavailable for this task")

    def _match(self, label: str) -> Any:
        if label not in self._matched:
            self._matched[label] = self.matcher.category(label)
        return self._matched[label]

    def _model_labels(self, prediction: Any) -> list[RankedLabel]:
        labels = []
        for ls in prediction.labels:
            category = self._match(ls.label)
            key = self.adapter.category_key(category) if category is not None else ""
            labels.append(
                RankedLabel(self.matcher.display(ls.label), float(ls.score), "model", key, category)
            )
        return labels

    def rank(self, prediction: Any) -> Ranking:
        top_k = int(prodcat_settings.TOP_K)
        embedding = getattr(prediction, "embedding", None)
        labels = self._model_labels(prediction)
        head = None
        if self.backend is not None and embedding is not None:
            head = self.backend.head_for(np.atleast_2d(embedding))
        model_flagged = bool(getattr(prediction, "out_of_taxonomy", False))
        if head is not None and head.keys:
            scores = head.scores(np.atleast_2d(embedding))[0]
            if not model_flagged:
                # A category known by its name alone competes only for a product the model
                # says fits none of its own; one with filed products (evidence from the
                # shop's decisions) always does.
                covered = set(self.model_keys.values())
                scores = {
                    k: v for k, v in scores.items() if k in covered or head.source(k) != "name"
                }
            merged = head.merge(
                [(ls.label, ls.score) for ls in prediction.labels], scores, self.model_keys
            )[:top_k]
            if merged:
                labels = self._merged_labels(merged, labels)
        # The product fits none of the shop's categories when the model says so and the head
        # found no category of its own that beats the model's guesses.
        flagged = model_flagged and (not labels or labels[0].source == "model")
        return Ranking(
            labels=labels,
            out_of_taxonomy=flagged,
            embedding=to_bytes(embedding) if embedding is not None else None,
            embedding_id=self.embedding_id if embedding is not None else "",
        )

    def _merged_labels(self, merged: Sequence[Any], model: list[RankedLabel]) -> list[RankedLabel]:
        by_key = {label.category_pk: label for label in model if label.category_pk}
        found = self.adapter.categories.get_many(
            [str(r.key) for r in merged if str(r.key) not in by_key]
        )
        names = self.adapter.categories.labels_of(list(found.values()))
        labels = []
        for key, score, source in merged:
            key = str(key)
            if key in by_key:
                ours = by_key[key]
                labels.append(RankedLabel(ours.label, float(score), source, key, ours.category))
            elif key in found:
                category = found[key]
                labels.append(RankedLabel(names[category.pk], float(score), source, key, category))
        return labels

    def refile(self, product: models.Model, ranking: Ranking, fingerprint: str) -> None:
        """A product already filed in the index got a fresh embedding (its title or photo
        changed since): its vectors follow, under the same source."""
        if self.backend is None or ranking.embedding is None:
            return
        rows = NeighbourVector.objects.filter(
            content_type_id=self.adapter.content_type.pk,
            object_id=str(product.pk),
            embedding_id=self.embedding_id,
            active=True,
        ).values_list("source", "fingerprint")
        filed = list(rows)
        if not filed or (fingerprint and all(fp == fingerprint for _, fp in filed)):
            return
        file_product(
            self.adapter,
            product,
            from_bytes(ranking.embedding),
            self.embedding_id,
            filed[0][0],
            fingerprint,
        )
