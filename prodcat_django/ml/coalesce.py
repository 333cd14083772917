"""Concurrent single requests served as one batch: the web process's ``suggest/``.

A predictor runs one forward pass at a time (its lock), so four clients asking at once queue
behind each other and each pays a batch-of-one pass, the encoder's least efficient size. A
:class:`Coalescer` lets whichever caller finds the predictor free run *everything waiting* as
one batch (up to ``max_batch``) and hand each waiter its own result; the others sleep until
theirs is ready. One caller alone runs at once, with no wait and no timer: coalescing happens
only when requests really overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["Coalescer"]


class _Slot:
    __slots__ = ("done", "error", "item", "key", "result")

    def __init__(self, item: Any, key: Hashable) -> None:
        self.item, self.key = item, key
        self.done, self.result, self.error = False, None, None


class Coalescer(Generic[T, R]):
    """``coalescer(item, key)`` = ``run([item], key)[0]``, batched with concurrent calls.

    ``run(items, key)`` must return one result per item, in order; calls with different
    ``key`` (e.g. another ``top_k``) never share a batch. An exception from ``run`` reaches
    every caller of that batch, and only them.
    """

    def __init__(self, run: Callable[[Sequence[T], Hashable], Sequence[R]], max_batch: int = 32):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._run, self.max_batch = run, int(max_batch)
        self._cond = threading.Condition()
        self._pending: list[_Slot] = []
        self._busy = False
        self.batches = 0  # how many times ``run`` was called (tests and benchmarks read it)

    def __call__(self, item: T, key: Hashable = None) -> R:
        slot = _Slot(item, key)
        with self._cond:
            self._pending.append(slot)
        while True:
            with self._cond:
                while self._busy and not slot.done:
                    self._cond.wait()
                if slot.done:
                    break
                # Lead: take the oldest waiter's key and everything queued under it.
                self._busy = True
                first = self._pending[0].key
                batch = [s for s in self._pending if s.key == first][: self.max_batch]
                taken = set(map(id, batch))
                self._pending = [s for s in self._pending if id(s) not in taken]
            try:
                results = self._run([s.item for s in batch], first)
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for {len(batch)} items")
                for s, r in zip(batch, results, strict=True):
                    s.result = r
            except BaseException as exc:  # handed to each caller of the batch, and re-raised there
                for s in batch:
                    s.error = exc
            finally:
                with self._cond:
                    self.batches += 1
                    for s in batch:
                        s.done = True
                    self._busy = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]
