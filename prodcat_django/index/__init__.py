"""The neighbour index: vectors of products filed under categories (by a merchant, by an
accepted suggestion, or already in the catalogue) and of category names, where every worker
sees them.

- :mod:`~prodcat_django.index.vectors`: float16 bytes <-> numpy (the portable storage form).
- :mod:`~prodcat_django.index.store`: writing rows (each write raises the index's revision in
  the same transaction) and reading what changed since a revision.
- :mod:`~prodcat_django.index.memory`: the portable backend: each worker process holds the
  matrix in memory and, before each task, applies the rows written since it last looked (one
  query when nothing changed).

The lookup is behind :class:`~prodcat_django.index.memory.NeighbourBackend` (``refresh`` and
``scores``), chosen by ``PRODCAT["NEIGHBOUR_BACKEND"]``; a pgvector backend would implement
the same two methods with an SQL nearest-neighbour query over the same table. No Django
request path imports torch through this package: it needs numpy only.
"""

from prodcat_django.index.memory import NeighbourBackend, PortableIndex, get_backend
from prodcat_django.index.store import (
    VectorEntry,
    current_revision,
    put_entries,
    put_object,
    remove_object,
)
from prodcat_django.index.vectors import from_bytes, to_bytes

__all__ = [
    "NeighbourBackend",
    "PortableIndex",
    "VectorEntry",
    "current_revision",
    "from_bytes",
    "get_backend",
    "put_entries",
    "put_object",
    "remove_object",
    "to_bytes",
]
