"""Fixtures of the API tests: users with exactly the permissions a test needs, products drawn
with Pillow, the tiny random checkpoint, and a clean throttle cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.test import APIClient

from prodcat_django import services
from prodcat_django.models import CategorySuggestion
from tests.shop_data import (  # noqa: F401 - fixtures shared with the Django and admin tests
    make_user,
    media_root,
    png_bytes,
)
from tests.testapp.models import Category, Product


@pytest.fixture(autouse=True)
def _fresh_throttle_counts() -> None:
    # Throttle history lives in the default cache; no test may inherit another's requests.
    cache.clear()


@pytest.fixture
def checkpoint(model_checkpoint: Path) -> Path:
    """The tiny random checkpoint (labels TEST_LABELS) as PRODCAT["CHECKPOINT"]."""
    return model_checkpoint


@pytest.fixture
def prodcat_setting(settings: Any, checkpoint: Path) -> Callable[..., None]:
    """Change PRODCAT keys for one test, keeping the checkpoint."""

    def set_(**values: Any) -> None:
        settings.PRODCAT = {**settings.PRODCAT, **values}

    return set_


@pytest.fixture
def viewer(db: None) -> User:
    return make_user("viewer", "view_categorysuggestion")


@pytest.fixture
def reviewer(db: None) -> User:
    return make_user(
        "reviewer",
        "view_categorysuggestion",
        "review_categorysuggestion",
        "view_product",
        "change_product",
        "change_vendoritem",
    )


@pytest.fixture
def review_only(db: None) -> User:
    """May review and see products, but not change them (so not set their category)."""
    return make_user(
        "review_only", "view_categorysuggestion", "review_categorysuggestion", "view_product"
    )


@pytest.fixture
def editor(db: None) -> User:
    """May change products (and so queue suggestions) but not review them."""
    return make_user("editor", "view_categorysuggestion", "change_product", "change_vendoritem")


@pytest.fixture
def nobody(db: None) -> User:
    return make_user("nobody")


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def ready_suggestion(
    checkpoint: Path, categories: dict[str, Category], make_product: Callable[..., Product]
) -> CategorySuggestion:
    """A product saved with a photo, its suggestion run by the worker code with the tiny model."""
    product = make_product("Canvas tote bag", png_bytes())
    suggestion = CategorySuggestion.objects.current_for(product).get()
    report = services.run_suggestions([suggestion.pk])
    assert report.ready == [suggestion.pk]
    suggestion.refresh_from_db()
    return suggestion
