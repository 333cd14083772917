"""Fixtures of the API tests: users with exactly the permissions a test needs, products drawn
with Pillow, the tiny random checkpoint, and a clean throttle cache."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils.text import slugify
from PIL import Image, ImageDraw
from rest_framework.test import APIClient

from prodcat_django import services
from prodcat_django.models import CategorySuggestion
from tests.conftest import TEST_LABELS
from tests.testapp.models import Category, Product


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_throttle_counts() -> None:
    # Throttle history lives in the default cache; no test may inherit another's requests.
    cache.clear()


@pytest.fixture
def checkpoint(prodcat_checkpoint: Path, settings: Any) -> Path:
    """The tiny random checkpoint (labels TEST_LABELS) as PRODCAT["CHECKPOINT"]."""
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(prodcat_checkpoint)}
    return prodcat_checkpoint


@pytest.fixture
def prodcat_setting(settings: Any, checkpoint: Path) -> Callable[..., None]:
    """Change PRODCAT keys for one test, keeping the checkpoint."""

    def set_(**values: Any) -> None:
        settings.PRODCAT = {**settings.PRODCAT, **values}

    return set_


@pytest.fixture
def categories(db: None) -> dict[str, Category]:
    return {
        label: Category.objects.create(name=label, slug=slugify(label)) for label in TEST_LABELS
    }


def picture(color: str = "navy", size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).rectangle((8, 8, size[0] - 8, size[1] - 8), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def make_user(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="pw")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache


@pytest.fixture
def viewer(db: None) -> User:
    return make_user("viewer", "view_categorysuggestion")


@pytest.fixture
def reviewer(db: None) -> User:
    return make_user("reviewer", "view_categorysuggestion", "review_categorysuggestion")


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
def make_product(db: None) -> Callable[..., Product]:
    def make(title: str = "Leather ankle boots", image: bytes | None = None) -> Product:
        product = Product(title=title)
        if image is not None:
            product.image.save("photo.png", ContentFile(image), save=False)
        product.save()
        return product

    return make


@pytest.fixture
def ready_suggestion(
    checkpoint: Path, categories: dict[str, Category], make_product: Callable[..., Product]
) -> CategorySuggestion:
    """A product saved with a photo, its suggestion run by the worker code with the tiny model."""
    product = make_product("Canvas tote bag", picture())
    suggestion = CategorySuggestion.objects.current_for(product).get()
    report = services.run_suggestions([suggestion.pk])
    assert report.ready == [suggestion.pk]
    suggestion.refresh_from_db()
    return suggestion
