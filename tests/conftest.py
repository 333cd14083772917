"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
