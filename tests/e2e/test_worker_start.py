"""Issue 12: a worker's main process loads the model before its pool forks, so the first
suggestion sent the moment the worker says "ready" is answered by a pool process that loads
nothing (real Celery prefork worker, PostgreSQL, Redis, the shipped model)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import _start_worker, own_queue
from tests.e2e.harness import (
    CeleryWorker,
    wait_until,
)
from tests.e2e.waiting import assert_ready, wait_for_suggestion
from tests.testapp.models import Product

pytestmark = pytest.mark.e2e

# Celery's worker log lines: "[<time>: <LEVEL>/<processName>] <message>".
LINE = re.compile(r"^\[[^\]]*: \w+/(?P<process>[\w-]+)\] (?P<message>.*)$")


@pytest.fixture
def fresh_worker(
    e2e_settings: None, test_db_name: str, worker_logs: Path
) -> Iterator[CeleryWorker]:
    """A worker of two pool processes started for this test, on a queue of its own (the
    session's worker, if one runs, must not take the task)."""
    with own_queue("start") as (url, run_id):
        worker = None
        try:
            worker = _start_worker(
                url, test_db_name, worker_logs / "start.log", run_id=run_id, concurrency=2
            )
            yield worker
        finally:
            if worker is not None:
                worker.stop()


def _lines(worker: CeleryWorker) -> list[tuple[str, str]]:
    return [
        (m["process"], m["message"])
        for m in map(LINE.match, worker.log_text().splitlines())
        if m is not None
    ]


def _warmed(lines: list[tuple[str, str]]) -> list[str]:
    return [m for p, m in lines if p != "MainProcess" and "warmed up at worker process start" in m]


def test_the_first_suggestion_after_ready_needs_no_load_in_the_pool(
    fresh_worker: CeleryWorker, transactional_db: None
) -> None:
    # Sent at once: the worker has just logged "ready".
    product = Product.objects.create(title="Puma Men Black Running Shoes")
    suggestion = wait_for_suggestion(product, fresh_worker)
    assert_ready(suggestion, fresh_worker)

    # Both pool processes log their warm-up pass (the one that took the task first).
    wait_until(
        lambda: _warmed(_lines(fresh_worker)),
        lambda warmed: len(warmed) == 2,
        timeout=120,
        what="both pool processes to finish their warm-up pass",
        on_timeout=fresh_worker.log_tail,
    )
    lines = _lines(fresh_worker)
    log = fresh_worker.log_text()
    loads = [process for process, message in lines if "prodcat: loading the model" in message]
    assert loads == ["MainProcess"], log  # one load, before the fork; none in a pool process
    [main] = [m for p, m in lines if p == "MainProcess" and "before the pool starts" in m]
    main_threads = int(re.search(r"torch threads (\d+)", main)[1])
    ready_at = next(n for n, (_, m) in enumerate(lines) if m.endswith(" ready."))
    loaded_at = next(n for n, (_, m) in enumerate(lines) if m == main)
    assert loaded_at < ready_at, log  # "ready" means the model is in
    # Each pool process only ran the warm-up pass, on the inherited weights, with the threads
    # the main process was configured with (its load ran on one, and gave them back).
    warmed = _warmed(lines)
    assert len({int(re.search(r"pid (\d+)", m)[1]) for m in warmed}) == 2, log
    for message in warmed:
        assert "the weights of the worker's main process, no load here" in message, log
        assert int(re.search(r"torch threads (\d+)", message)[1]) == main_threads, log
