"""Fixtures of the admin tests: the test admin URLs, products drawn with Pillow, suggestions
in a chosen state, and staff users with and without the review permission."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.base import ContentFile
from django.test import Client
from django.utils.text import slugify
from PIL import Image, ImageDraw

from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.conftest import TEST_LABELS
from tests.testapp.models import Category, Product


@pytest.fixture(autouse=True)
def admin_urls(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.admin.urls"


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def png_bytes(color: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).ellipse((8, 8, size[0] - 8, size[1] - 8), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def categories(db: None) -> dict[str, Category]:
    return {
        label: Category.objects.create(name=label, slug=slugify(label)) for label in TEST_LABELS
    }


@pytest.fixture
def make_product(db: None) -> Callable[..., Product]:
    def make(title: str = "Leather ankle boots", image: bytes | None = None, **fields: Any):
        product = Product(title=title, **fields)
        if image is not None:
            product.image.save("photo.png", ContentFile(image), save=False)
        product.save()
        return product

    return make


@pytest.fixture
def make_suggestion(
    make_product: Callable[..., Product], categories: dict[str, Category]
) -> Callable[..., CategorySuggestion]:
    """A product and its current suggestion, put in ``status`` with ``labels`` as a worker
    would have written them (the signal's pending row is reused, no model runs)."""

    def make(
        title: str = "Leather ankle boots",
        labels: list[tuple[str, float]] | None = None,
        status: str = SuggestionStatus.READY,
        image: bytes | None = None,
        **fields: Any,
    ) -> CategorySuggestion:
        labels = (
            labels if labels is not None else [("Shoes", 0.82), ("Bags", 0.12), ("Watches", 0.06)]
        )
        product = make_product(title, image=image)
        suggestion = CategorySuggestion.objects.current_for(product).get()
        top = labels[0][0] if labels else ""
        category = categories.get(top)
        suggestion.status = status
        suggestion.labels = [{"label": label, "score": score} for label, score in labels]
        suggestion.label = top
        suggestion.score = labels[0][1] if labels else None
        suggestion.category_pk = str(category.pk) if category else ""
        suggestion.model_name = "tiny"
        suggestion.model_version = "0.0.1"
        for name, value in fields.items():
            setattr(suggestion, name, value)
        suggestion.save()
        return suggestion

    return make


def _staff(username: str, *, review: bool, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(username, password="pw")
    user = User.objects.create_user(username, password="pw", is_staff=True)
    codenames = [
        "view_categorysuggestion",
        "view_suggestionbatch",
        "view_product",
        "change_product",
    ]
    if review:
        codenames.append("review_categorysuggestion")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache


@pytest.fixture
def reviewer(db: None) -> User:
    return _staff("reviewer", review=True)


@pytest.fixture
def clerk(db: None) -> User:
    """Staff who may view suggestions and edit products, but not review suggestions."""
    return _staff("clerk", review=False)


@pytest.fixture
def reviewer_client(client: Client, reviewer: User) -> Client:
    client.force_login(reviewer)
    return client


@pytest.fixture
def clerk_client(client: Client, clerk: User) -> Client:
    client.force_login(clerk)
    return client
