"""Fixtures shared by the whole suite: the tiny checkpoint, and the test shop's categories and
products."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.testapp.models import Category, Product

#: The Oscar add-on's tests need their own project (Oscar's apps, no test shop):
#: ``pytest tests/oscar --ds=tests.oscar.settings``; under other settings they are not collected.
collect_ignore = (
    [] if os.environ.get("DJANGO_SETTINGS_MODULE", "").startswith("tests.oscar.") else ["oscar"]
)

#: Category names of the test shop, and the labels of the tiny test checkpoint.
TEST_LABELS = ("Shoes", "Watches", "Bags", "Home Decor")


@pytest.fixture(scope="session")
def prodcat_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny random-weight checkpoint with TEST_LABELS, built once per session, and made
    PRODCAT["CHECKPOINT"] for the session (PRODCAT_TEST_CHECKPOINT overrides it)."""
    from django.conf import settings

    from prodcat_django.classifier import clear_cache

    configured = os.environ.get("PRODCAT_TEST_CHECKPOINT")
    if configured:
        path = Path(configured)
    else:
        from prodcat_django.ml.testing import build_random_checkpoint

        path = build_random_checkpoint(tmp_path_factory.mktemp("checkpoint"), list(TEST_LABELS))
    previous = settings.PRODCAT
    settings.PRODCAT = {**previous, "CHECKPOINT": str(path)}
    clear_cache()
    yield path
    settings.PRODCAT = previous
    clear_cache()


@pytest.fixture(autouse=True)
def fresh_neighbour_index() -> Iterator[None]:
    """Each test starts with no in-memory neighbour index and no remembered current
    fingerprints: their rows were rolled back (and primary keys may be reused)."""
    from prodcat_django import fingerprint
    from prodcat_django.services import neighbours

    neighbours.reset()
    fingerprint.forget_all_current()
    yield
    neighbours.reset()
    fingerprint.forget_all_current()


@pytest.fixture
def model_checkpoint(prodcat_checkpoint: Path, settings: Any) -> Path:
    """The tiny 4-label random checkpoint as PRODCAT["CHECKPOINT"] for one test."""
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(prodcat_checkpoint)}
    return prodcat_checkpoint


@pytest.fixture
def categories(db: None) -> dict[str, Category]:
    """The test shop's categories, one per TEST_LABELS name."""
    from django.utils.text import slugify

    from tests.testapp.models import Category

    return {
        label: Category.objects.create(name=label, slug=slugify(label)) for label in TEST_LABELS
    }


@pytest.fixture
def make_product(db: None) -> Callable[..., Product]:
    """Saves a test shop product, with a photo when given ``image`` bytes."""
    from django.core.files.base import ContentFile

    from tests.testapp.models import Product

    def make(
        title: str = "Leather ankle boots", image: bytes | None = None, **fields: Any
    ) -> Product:
        product = Product(title=title, **fields)
        if image is not None:
            product.image.save("photo.png", ContentFile(image), save=False)
        product.save()
        return product

    return make


@pytest.fixture
def commit_so_far(db: None) -> Callable[..., None]:
    """The commit at the end of a request, for tests that run in one transaction: the
    on-commit callbacks queued so far are dropped (or run, with ``execute=True``), so the next
    save is a later request's, not a second save of the same transaction (which prodcat
    coalesces into one suggestion)."""
    from django.db import connection

    def commit(*, execute: bool = False) -> None:
        callbacks = [func for _, func, _ in connection.run_on_commit]
        connection.run_on_commit = []
        if execute:
            for func in callbacks:
                func()

    return commit
