"""Fixtures of the Django app's tests: a per-test media root, categories, products drawn with
Pillow, reviewers, and the tiny random checkpoints."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from prodcat_django.classifier import clear_cache
from tests.conftest import TEST_LABELS
from tests.testapp.models import Category, Product


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def model_checkpoint(prodcat_checkpoint: Path, settings: Any) -> Path:
    """The tiny 4-label random checkpoint as PRODCAT["CHECKPOINT"] for one test."""
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(prodcat_checkpoint)}
    return prodcat_checkpoint


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
def categories(db: None) -> dict[str, Category]:
    from django.utils.text import slugify

    return {
        label: Category.objects.create(name=label, slug=slugify(label)) for label in TEST_LABELS
    }


def png_bytes(color: str = "red", size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    """A small picture: a coloured background with a white ellipse."""
    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).ellipse((8, 8, size[0] - 8, size[1] - 8), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def make_product(db: None) -> Callable[..., Product]:
    def make(
        title: str = "Leather ankle boots", image: bytes | None = None, **fields: Any
    ) -> Product:
        product = Product(title=title, **fields)
        if image is not None:
            product.image.save("photo.png", ContentFile(image), save=False)
        product.save()
        return product

    return make


def _user(username: str, *, review: bool) -> User:
    user = User.objects.create_user(username, password="pw")
    if review:
        user.user_permissions.add(Permission.objects.get(codename="review_categorysuggestion"))
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache


@pytest.fixture
def reviewer(db: None) -> User:
    return _user("reviewer", review=True)


@pytest.fixture
def clerk(db: None) -> User:
    """A staff user without the review permission."""
    return _user("clerk", review=False)
