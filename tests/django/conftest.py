"""Fixtures of the Django app's tests: a per-test media root, categories, products drawn with
Pillow, reviewers, and the tiny random checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from prodcat_django.classifier import clear_cache
from tests.shop_data import (  # noqa: F401 - fixtures shared with the API and admin tests
    make_user,
    media_root,
)


@pytest.fixture(scope="session")
def _confident_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from prodcat_django.ml.testing import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("confident"), ["Shoes"], name="one")


@pytest.fixture
def confident_checkpoint(
    _confident_checkpoint: Path, model_checkpoint: Path, settings: Any
) -> Iterator[Path]:
    """A one-label checkpoint: every prediction is "Shoes" at score 1.0, so it always clears
    the auto-accept threshold (0.5). (Depends on model_checkpoint so that it wins.)"""
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(_confident_checkpoint)}
    yield _confident_checkpoint
    clear_cache()


@pytest.fixture
def reviewer(db: None) -> User:
    """May review, and change the products whose category a decision sets."""
    return make_user("reviewer", "review_categorysuggestion", "change_product", "change_vendoritem")


@pytest.fixture
def review_only(db: None) -> User:
    """The review permission without change permission on any product model."""
    return make_user("review_only", "review_categorysuggestion")


@pytest.fixture
def clerk(db: None) -> User:
    """A user without the review permission."""
    return make_user("clerk")
