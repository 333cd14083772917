"""Concurrent single requests share one forward pass (ml/coalesce.py).

The first batch is held open until the other callers have queued behind it, so what shares a
batch never depends on thread timing."""

import threading
import time

import pytest

from prodcat_django.ml.coalesce import Coalescer


class Held:
    """A ``run`` whose first call waits for ``release``; records every batch."""

    def __init__(self):
        self.calls, self.started, self.release = [], threading.Event(), threading.Event()

    def __call__(self, items, key):
        self.calls.append((list(items), key))
        if len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(10)
        if "boom" in items:
            raise ValueError("bad input in this batch")
        return [(2 * i, key) for i in items]


def _overlapping(coalescer, held, first, others):
    """``first`` runs and holds; ``others`` queue behind it; then it is released."""
    results, errors = {}, {}

    def call(n, item, key):
        try:
            results[n] = coalescer(item, key)
        except Exception as exc:
            errors[n] = exc

    threads = [threading.Thread(target=call, args=(0, *first))]
    threads[0].start()
    assert held.started.wait(10)
    for n, args in enumerate(others, start=1):
        threads.append(threading.Thread(target=call, args=(n, *args)))
        threads[-1].start()
    deadline = time.monotonic() + 10
    while len(coalescer._pending) < len(others) and time.monotonic() < deadline:
        time.sleep(0.001)
    held.release.set()
    for t in threads:
        t.join(10)
    return results, errors


def test_a_lone_call_runs_at_once_as_a_batch_of_one():
    held = Held()
    held.release.set()
    coalescer = Coalescer(held)
    assert coalescer(3, "k") == (6, "k")
    assert held.calls == [([3], "k")] and coalescer.batches == 1


def test_overlapping_calls_share_batches_and_each_gets_its_own_result():
    held = Held()
    coalescer = Coalescer(held, max_batch=4)
    results, errors = _overlapping(coalescer, held, (0, 3), [(n, 3) for n in range(1, 9)])
    assert not errors and results == {n: (2 * n, 3) for n in range(9)}
    # The first alone, then the eight that waited in two batches of four.
    assert held.calls[0][0] == [0]
    assert sorted(len(items) for items, _ in held.calls[1:]) == [4, 4]


def test_calls_with_another_key_never_share_a_batch():
    held = Held()
    coalescer = Coalescer(held)
    results, errors = _overlapping(coalescer, held, (0, 0), [(n, n % 2) for n in range(1, 7)])
    assert not errors and results == {n: (2 * n, n % 2) for n in range(7)}
    assert len(held.calls) == 3  # [0], then the waiting evens and the odds, one batch each
    assert all({i % 2 for i in items} == {key} for items, key in held.calls)


def test_an_error_reaches_only_the_callers_of_its_batch():
    held = Held()
    coalescer = Coalescer(held)
    results, errors = _overlapping(coalescer, held, (0, None), [("boom", None), (2, None)])
    assert results == {0: (0, None)}
    assert set(errors) == {1, 2} and all(isinstance(e, ValueError) for e in errors.values())
    assert coalescer(5) == (10, None)  # and the coalescer still works


def test_bad_settings_and_bad_runs_are_clear():
    with pytest.raises(ValueError, match="max_batch"):
        Coalescer(lambda items, key: items, max_batch=0)
    short = Coalescer(lambda items, key: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        short(1)
