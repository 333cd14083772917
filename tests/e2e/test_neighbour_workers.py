"""The neighbour index is where every worker sees it: two real Celery workers (PostgreSQL,
Redis) that loaded the index before three mugs were filed under a new "Mugs" category both
suggest Mugs for the next mugs, from the rows the decisions wrote (issue 10)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils.text import slugify

from prodcat_django import services
from prodcat_django.models import NeighbourVector
from tests.e2e.conftest import _start_worker, own_queue
from tests.e2e.harness import CeleryWorker
from tests.e2e.waiting import assert_ready, wait_for_suggestion
from tests.neighbour_data import mug_png
from tests.testapp.models import Category, Product

MUGS = [
    "White ceramic coffee mug 350 ml",
    "Blue stoneware tea mug with handle",
    "Large porcelain mug for coffee and tea",
]
NEXT_MUGS = [
    "Red enamel camping mug 400 ml",
    "Black matte ceramic mug",
    "Green glazed coffee mug",
    "Yellow porcelain tea mug",
    "Grey stoneware espresso mug",
    "Striped ceramic breakfast mug",
]
WARM_UP = ["Roxy Women Mustard Yellow Top", "Puma Men Black Sports Shoes", "Fastrack Watch"]


@pytest.fixture(scope="module")
def two_workers(
    e2e_settings: None, test_db_name: str, worker_logs: Path
) -> Iterator[list[CeleryWorker]]:
    # A queue of their own: the session's worker (started by earlier modules) must not take
    # these tasks, or "which worker ran it" has no answer.
    with own_queue("knn") as (url, run_id):
        workers = []
        try:
            for n in (1, 2):
                log = worker_logs / f"knn-{n}.log"
                workers.append(_start_worker(url, test_db_name, log, run_id=run_id))
            yield workers
        finally:
            for worker in workers:
                worker.stop()


def _save(title: str, seed: int) -> Product:
    product = Product(title=title)
    product.image.save(f"mug-{seed}.png", ContentFile(mug_png(seed)), save=False)
    product.save()  # committed at once (transactional test): the task is sent
    return product


def _handled_by(suggestion: Any, workers: list[CeleryWorker]) -> int:
    """Which worker ran the suggestion's task (its id, the lease owner, is in that log)."""
    owner = suggestion.lease_owner
    found = [n for n, worker in enumerate(workers) if owner and owner in worker.log_text()]
    assert len(found) == 1, f"task {owner!r} in the logs of workers {found}"
    return found[0]


@pytest.mark.e2e
def test_two_workers_learn_a_new_category_from_the_same_index(
    two_workers: list[CeleryWorker], transactional_db: None, checkpoint_info: Any, superuser: Any
) -> None:
    for name in [*checkpoint_info.labels, "Mugs"]:
        Category.objects.create(name=name, slug=slugify(name))
    mugs = Category.objects.get(name="Mugs")

    # Both workers load the model and the index (category names only) first.
    seen: set[int] = set()
    for i, title in enumerate(WARM_UP * 3):
        product = Product.objects.create(title=f"{title} {i}")
        suggestion = wait_for_suggestion(product, two_workers[0])
        assert_ready(suggestion, two_workers[0])
        seen.add(_handled_by(suggestion, two_workers))
        if seen == {0, 1}:
            break
    assert seen == {0, 1}, "one worker took every warm-up task"

    # Three mugs filed under the new category by a merchant (corrections, in this process).
    for i, title in enumerate(MUGS):
        suggestion = wait_for_suggestion(_save(title, i), two_workers[0])
        assert_ready(suggestion, two_workers[0])
        services.reject(suggestion, user=superuser, category=mugs)
    filed = NeighbourVector.objects.filter(category_pk=str(mugs.pk), source="merchant", active=True)
    assert filed.count() == 3

    # The next mugs are suggested as Mugs, from similar products, by whichever worker.
    by_worker: dict[int, list[str]] = {0: [], 1: []}
    for i, title in enumerate(NEXT_MUGS, start=10):
        suggestion = wait_for_suggestion(_save(title, i), two_workers[0])
        assert_ready(suggestion, two_workers[0])
        assert suggestion.label == "Mugs", (title, suggestion.labels)
        assert suggestion.labels[0]["source"] == "neighbours"
        by_worker[_handled_by(suggestion, two_workers)].append(title)
    assert by_worker[0] and by_worker[1], f"one worker took every mug: {by_worker}"
