"""Writing and reading the neighbour index's rows (:class:`~prodcat_django.models.NeighbourVector`).

Every write runs in one transaction that first raises the counter row
(:class:`~prodcat_django.models.NeighbourIndexState`) and stamps the rows it writes with the
new revision. The counter's row lock orders writers, so once a reader sees revision ``N``
every row stamped ``<= N`` is committed: a reader applies the rows in ``(mine, N]`` and is
exactly as current as revision ``N`` (rows rewritten since carry a higher revision and are
picked up next time). A removed vector stays as a tombstone (``active=False``) so readers
learn of the removal the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F

from prodcat_django.index.vectors import to_bytes
from prodcat_django.lru import BoundedLRU
from prodcat_django.models import (
    CategorySuggestion,
    NeighbourIndexState,
    NeighbourVector,
    SuggestionStatus,
)

#: The counter row's name.
STATE = "default"

#: (content type id, object id) -> the categories it is filed under, as this process last read
#: them: see :func:`known_active_categories`.
_filed: BoundedLRU[tuple[int, str], frozenset[str]] = BoundedLRU(10_000)


@dataclass(frozen=True)
class VectorEntry:
    """One vector to store: an object (product, or category for a name vector) filed under
    ``category_pk`` for ``source``."""

    content_type_id: int
    object_id: str
    category_type_id: int | None
    category_pk: str
    source: str
    vector: Any  # 1-d float array
    embedding_id: str
    fingerprint: str = ""


@dataclass(frozen=True)
class StoredRow:
    """A row as a reader applies it."""

    pk: int
    category_pk: str
    source: str
    vector: bytes | None  # None for a tombstone
    revision: int


def current_revision() -> int:
    """The index's revision: one indexed primary-key read."""
    value = NeighbourIndexState.objects.filter(name=STATE).values_list("revision", flat=True)
    return int(value.first() or 0)


def _next_revision() -> int:
    """Raise the counter (inside the caller's transaction; the row lock orders writers)."""
    NeighbourIndexState.objects.get_or_create(name=STATE)
    NeighbourIndexState.objects.filter(name=STATE).update(revision=F("revision") + 1)
    return int(NeighbourIndexState.objects.filter(name=STATE).values_list("revision", flat=True)[0])


def put_entries(entries: Sequence[VectorEntry]) -> int:
    """Insert or replace ``entries`` (keyed by object, category and embedding id) in one
    transaction and one revision; returns the revision (the current one when empty)."""
    if not entries:
        return current_revision()
    _forget((entry.content_type_id, entry.object_id) for entry in entries)
    with transaction.atomic():
        revision = _next_revision()
        _upsert(entries, revision)
    return revision


# An entry's row is keyed by (object, category, space): writing it again updates it in place.
_KEY_FIELDS = ["content_type", "object_id", "category_pk", "embedding_id"]
_VALUE_FIELDS = [
    "category_type",
    "source",
    "vector",
    "dim",
    "fingerprint",
    "revision",
    "active",
    "updated_at",
]


def _upsert(entries: Sequence[VectorEntry], revision: int) -> None:
    NeighbourVector.objects.bulk_create(
        [_row(entry, revision) for entry in entries],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=_KEY_FIELDS,
        update_fields=_VALUE_FIELDS,
    )


def put_object(
    content_type_id: int,
    object_id: Any,
    entries: Sequence[VectorEntry],
) -> int:
    """Make ``entries`` the object's only active vectors: its rows under other categories (it
    was filed elsewhere before) become tombstones, in the same revision."""
    object_id = str(object_id)
    keep = {entry.category_pk for entry in entries}
    _forget([(content_type_id, object_id), *((e.content_type_id, e.object_id) for e in entries)])
    with transaction.atomic():
        revision = _next_revision()
        NeighbourVector.objects.filter(
            content_type_id=content_type_id, object_id=object_id, active=True
        ).exclude(category_pk__in=keep).update(active=False, revision=revision)
        if entries:
            _upsert(entries, revision)
    return revision


def remove_object(content_type_id: int, object_id: Any) -> int:
    """Tombstone every vector of the object (a deleted product or category); returns how many."""
    _forget([(content_type_id, object_id)])
    with transaction.atomic():
        rows = NeighbourVector.objects.filter(
            content_type_id=content_type_id, object_id=str(object_id), active=True
        )
        if not rows.exists():
            return 0
        revision = _next_revision()
        return rows.update(active=False, revision=revision)


def active_categories(content_type_id: int, object_id: Any) -> set[str]:
    """The categories the object is filed under in the index (any embedding id)."""
    return set(
        NeighbourVector.objects.filter(
            content_type_id=content_type_id, object_id=str(object_id), active=True
        ).values_list("category_pk", flat=True)
    )


def known_active_categories(content_type_id: int, object_id: Any) -> frozenset[str] | None:
    """What :func:`active_categories` returned for the object when this process last read it
    (and wrote nothing for it since), or None. Other processes' writes are not seen."""
    return _filed.get((content_type_id, str(object_id)))


def remember_active_categories(content_type_id: int, object_id: Any, keys: Iterable[str]) -> None:
    """Record what a committed read of :func:`active_categories` returned."""
    _filed.put((content_type_id, str(object_id)), frozenset(keys))


def forget_known_categories() -> None:
    """Forget every remembered read (tests; a rewound database)."""
    _filed.clear()


def _forget(objects: Iterable[tuple[int, Any]]) -> None:
    # Before a write (a rolled-back one then leaves nothing behind).
    _filed.discard((content_type_id, str(object_id)) for content_type_id, object_id in objects)


def rows_between(
    embedding_id: str,
    category_type_id: int | None,
    after: int,
    upto: int,
    *,
    chunk_size: int = 5000,
) -> Iterator[StoredRow]:
    """The rows of one embedding id and category model stamped in ``(after, upto]``, oldest
    first; tombstones carry ``vector=None``. Streamed (a first load reads every row)."""
    rows = NeighbourVector.objects.filter(
        embedding_id=embedding_id, revision__gt=after, revision__lte=upto
    )
    if category_type_id is None:
        rows = rows.filter(category_type__isnull=True)
    else:
        rows = rows.filter(category_type_id=category_type_id)
    if after == 0:
        rows = rows.filter(active=True)  # a first load has nothing to remove
    fields = ("pk", "category_pk", "source", "vector", "active", "revision")
    for pk, category_pk, source, vector, active, revision in (
        rows.order_by("revision", "pk").values_list(*fields).iterator(chunk_size=chunk_size)
    ):
        yield StoredRow(pk, category_pk, source, bytes(vector) if active else None, revision)


def unlabelled_vectors(
    embedding_id: str, content_type_ids: Sequence[int], limit: int
) -> tuple[list[bytes], int]:
    """The pooled vectors of the newest undecided products of these product models, and the
    newest suggestion's pk (0 if none), which says whether the pool moved since.

    Read off their current, ready suggestions (the worker stores the vector with each), so
    the shop's catalogue shapes the categories known by name alone before any decision."""
    if limit <= 0 or not content_type_ids:
        return [], 0
    rows = list(
        CategorySuggestion.objects.filter(
            content_type_id__in=list(content_type_ids),
            embedding_id=embedding_id,
            is_current=True,
            status=SuggestionStatus.READY,
            embedding__isnull=False,
        )
        .order_by("-pk")
        .values_list("pk", "embedding")[:limit]
    )
    return [bytes(vector) for _, vector in rows], (rows[0][0] if rows else 0)


def _row(entry: VectorEntry, revision: int) -> NeighbourVector:
    data = to_bytes(entry.vector)
    return NeighbourVector(
        content_type_id=entry.content_type_id,
        object_id=str(entry.object_id),
        category_type_id=entry.category_type_id,
        category_pk=str(entry.category_pk),
        source=entry.source,
        vector=data,
        dim=len(data) // 2,
        embedding_id=entry.embedding_id,
        fingerprint=entry.fingerprint,
        revision=revision,
        active=True,
    )
