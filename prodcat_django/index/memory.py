"""The portable lookup: each worker process keeps the index's matrix in memory.

Before each task the worker calls :meth:`PortableIndex.refresh`: one query reads the index's
revision, and only when it moved are the rows written since applied (new and replaced
vectors overwrite their slot, tombstones drop theirs). Two worker processes therefore answer
from the same rows as soon as each has refreshed; nothing lives only in one process.

The scoring itself is :class:`prodcat_django.ml.knn.NeighbourHead` (products' vectors, plus
category-name vectors standing in for categories without products). A category known by its
name alone is scored against a prototype learnt from the shop's undecided products
(``NeighbourHead.with_pool``): their vectors are re-read at most every
``NEIGHBOUR_POOL_SECONDS``, up to ``NEIGHBOUR_POOL`` of them, and only while such a category
exists.

Another backend (pgvector: ``ORDER BY vector <=> %s LIMIT k`` over the same table) implements
:class:`NeighbourBackend` and is named in ``PRODCAT["NEIGHBOUR_BACKEND"]``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from django.utils.module_loading import import_string

from prodcat_django.conf import prodcat_settings
from prodcat_django.index import store
from prodcat_django.index.vectors import DTYPE
from prodcat_django.models import NeighbourSource


class NeighbourBackend(Protocol):
    """What the worker asks of the index, for one embedding id and one category model."""

    def __init__(self, embedding_id: str, category_type_id: int | None) -> None: ...

    def refresh(self) -> int:
        """Catch up with the stored rows; returns how many rows were applied."""
        ...

    def head_for(self, query: np.ndarray) -> Any:
        """A :class:`~prodcat_django.ml.knn.NeighbourHead` that can score ``query`` (one row),
        or None when the index has nothing for it. The portable backend returns its head over
        every vector; a database-side backend would build one from the query's nearest rows.
        """
        ...

    def stats(self) -> dict[str, Any]:
        """``{"products", "names", "revision", "bytes"}``: what is loaded."""
        ...


class PortableIndex:
    """The in-memory matrix of one embedding id and category model (see the module docstring)."""

    def __init__(self, embedding_id: str, category_type_id: int | None) -> None:
        self.embedding_id = embedding_id
        self.category_type_id = category_type_id
        self.revision = 0
        self._lock = threading.Lock()
        self._slots: dict[int, int] = {}  # row pk -> slot
        self._matrix = np.zeros((0, 0), dtype=DTYPE)  # float16, like the stored bytes
        self._size = 0
        self._keys: list[str] = []
        self._alive = np.zeros(0, dtype=bool)
        self._is_name = np.zeros(0, dtype=bool)
        self._head: Any = None
        self._bare: Any = None  # the head before the pool shaped its name-only prototypes
        self.pool_types: tuple[int, ...] = ()
        self._pool_mark: tuple[int, int] | None = None  # (newest pk, count) of the pool read
        self._pool_read_at = float("-inf")

    def use_pool(self, content_type_ids: Sequence[int]) -> None:
        """The product models whose undecided products shape name-only categories."""
        types = tuple(sorted(set(content_type_ids)))
        if types != self.pool_types:
            with self._lock:
                self.pool_types, self._pool_read_at = types, float("-inf")

    def refresh(self) -> int:
        upto = store.current_revision()
        with self._lock:
            if upto < self.revision:  # the database was rewound (restored, or a test): reload
                self.__init__(self.embedding_id, self.category_type_id)  # type: ignore[misc]
            if upto <= self.revision:
                return 0
            applied = 0
            batch: list[store.StoredRow] = []
            for row in store.rows_between(
                self.embedding_id, self.category_type_id, self.revision, upto
            ):
                batch.append(row)
                if len(batch) >= _APPLY_BATCH:
                    applied += self._apply_many(batch)
                    batch = []
            applied += self._apply_many(batch)
            self.revision = upto
            if applied:
                self._head = self._bare = None
                self._pool_read_at = float("-inf")
            return applied

    def head_for(self, query: np.ndarray) -> Any:
        return self.head()

    def scores(self, queries: np.ndarray) -> list[dict[str, float]]:
        """Per row of ``queries``: ``{category_pk: probability}`` (empty without vectors)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        head = self.head()
        if head is None:
            return [{} for _ in range(len(queries))]
        return head.scores(queries)

    def head(self) -> Any:
        """The :class:`~prodcat_django.ml.knn.NeighbourHead` over the live vectors (None when
        there are none); rebuilt only after a refresh changed something."""
        with self._lock:
            if self._bare is None and self._alive[: self._size].any():
                self._bare = self._head = self._build()
            if self._bare is not None and self._bare.name_only:
                self._pool_head()
            return self._head

    def _pool_head(self) -> None:
        """Re-read the pool when it is due and, if it moved, re-shape the name-only
        prototypes (cheap: the products' arrays are shared). Called under ``self._lock``."""
        limit = int(prodcat_settings.NEIGHBOUR_POOL)
        now = time.monotonic()
        if now - self._pool_read_at < float(prodcat_settings.NEIGHBOUR_POOL_SECONDS):
            return
        self._pool_read_at = now
        vectors, newest = store.unlabelled_vectors(self.embedding_id, self.pool_types, limit)
        mark = (newest, len(vectors))
        if mark == self._pool_mark:
            return
        self._pool_mark = mark
        dim = self._bare._raw_names.shape[1]
        usable = [v for v in vectors if len(v) == dim * DTYPE.itemsize]
        pool = (
            np.frombuffer(b"".join(usable), dtype=DTYPE).reshape(-1, dim).astype(np.float32)
            if usable
            else None
        )
        self._head = self._bare.with_pool(pool)

    def stats(self) -> dict[str, Any]:
        alive = self._alive[: self._size]
        names = self._is_name[: self._size]
        return {
            "products": int((alive & ~names).sum()),
            "names": int((alive & names).sum()),
            "revision": self.revision,
            "bytes": int(self._matrix.nbytes),
            "pool": int(getattr(self._head, "pooled", 0)),
        }

    def _apply_many(self, rows: list[store.StoredRow]) -> int:
        """Apply rows in order; a run of new vectors is decoded and copied in one go (a first
        load of 100k rows is then numpy work, not 100k Python assignments)."""
        fresh = [row for row in rows if row.vector is not None and row.pk not in self._slots]
        if len(fresh) == len(rows) and len({row.pk for row in rows}) == len(rows) and rows:
            dim = len(rows[0].vector) // DTYPE.itemsize
            if all(len(row.vector) == dim * DTYPE.itemsize for row in rows):
                block = np.frombuffer(b"".join(row.vector for row in rows), dtype=DTYPE)
                start = self._reserve(len(rows), dim)
                self._matrix[start : start + len(rows)] = block.reshape(len(rows), dim)
                for offset, row in enumerate(rows):
                    self._slots[row.pk] = start + offset
                    self._keys.append(row.category_pk)
                    self._is_name[start + offset] = row.source == NeighbourSource.NAME
                self._alive[start : start + len(rows)] = True
                return len(rows)
        for row in rows:
            self._apply(row)
        return len(rows)

    def _apply(self, row: store.StoredRow) -> None:
        slot = self._slots.get(row.pk)
        if row.vector is None:
            if slot is not None:
                self._alive[slot] = False
            return
        vector = np.frombuffer(row.vector, dtype=DTYPE)
        if slot is None:
            slot = self._grow(vector.shape[0])
            self._slots[row.pk] = slot
            self._keys.append(row.category_pk)
        elif vector.shape[0] != self._matrix.shape[1]:
            raise ValueError(
                f"index row {row.pk}: {vector.shape[0]} dimensions, not {self._matrix.shape[1]}"
            )
        self._matrix[slot] = vector
        self._keys[slot] = row.category_pk
        self._alive[slot] = True
        self._is_name[slot] = row.source == NeighbourSource.NAME

    def _grow(self, dim: int) -> int:
        return self._reserve(1, dim)

    def _reserve(self, n: int, dim: int) -> int:
        """``n`` new slots at the end; returns the first."""
        if self._size == 0 and self._matrix.shape[1] != dim:
            self._matrix = np.zeros((0, dim), dtype=DTYPE)
        if dim != self._matrix.shape[1]:
            raise ValueError(f"a {dim}-dimensional vector in a {self._matrix.shape[1]}-d index")
        if self._size + n > len(self._matrix):  # double the capacity: appends stay amortised
            capacity = max(1024, 2 * len(self._matrix), self._size + n)
            matrix = np.zeros((capacity, dim), dtype=DTYPE)
            matrix[: self._size] = self._matrix[: self._size]
            self._matrix = matrix
            for name in ("_alive", "_is_name"):
                flags = np.zeros(capacity, dtype=bool)
                flags[: self._size] = getattr(self, name)[: self._size]
                setattr(self, name, flags)
        start = self._size
        self._size += n
        return start

    def _build(self) -> Any:
        from prodcat_django.ml.knn import NeighbourHead

        alive = self._alive[: self._size]
        names = self._is_name[: self._size]
        keys = np.array(self._keys, dtype=object)
        products = alive & ~names
        name_rows = np.flatnonzero(alive & names)
        name_vectors = {str(keys[i]): self._matrix[i].astype(np.float32) for i in name_rows}
        return NeighbourHead(
            self._matrix[: self._size][products].astype(np.float32),
            [str(k) for k in keys[products]],
            names=name_vectors,
        )


#: Rows decoded and copied into the matrix at a time.
_APPLY_BATCH = 5000

_backends: dict[tuple[str, str, int | None], NeighbourBackend] = {}
_backends_lock = threading.Lock()


def get_backend(embedding_id: str, category_type_id: int | None) -> NeighbourBackend:
    """This process's index for ``embedding_id`` and the category model, of the class named by
    ``PRODCAT["NEIGHBOUR_BACKEND"]`` (refresh it before use)."""
    path = str(prodcat_settings.NEIGHBOUR_BACKEND)
    key = (path, embedding_id, category_type_id)
    with _backends_lock:
        backend = _backends.get(key)
        if backend is None:
            backend = import_string(path)(embedding_id, category_type_id)
            _backends[key] = backend
        return backend


def clear_backends() -> None:
    """Drop every in-memory index of this process (tests; a changed database)."""
    with _backends_lock:
        _backends.clear()
