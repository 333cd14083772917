"""Fixtures of the admin tests: the test admin URLs, suggestions in a chosen state, and staff
users with and without the review permission."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.shop_data import make_user, media_root  # noqa: F401 - media_root is autouse
from tests.testapp.models import Category, Product


@pytest.fixture(autouse=True)
def admin_urls(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.admin.urls"


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


#: What every staff user of these tests may do; reviewers may also review suggestions.
STAFF_PERMISSIONS = (
    "view_categorysuggestion",
    "view_suggestionbatch",
    "view_product",
    "change_product",
)


@pytest.fixture
def reviewer(db: None) -> User:
    return make_user("reviewer", *STAFF_PERMISSIONS, "review_categorysuggestion", is_staff=True)


@pytest.fixture
def clerk(db: None) -> User:
    """Staff who may view suggestions and edit products, but not review suggestions."""
    return make_user("clerk", *STAFF_PERMISSIONS, is_staff=True)


@pytest.fixture
def reviewer_client(client: Client, reviewer: User) -> Client:
    client.force_login(reviewer)
    return client


@pytest.fixture
def clerk_client(client: Client, clerk: User) -> Client:
    client.force_login(clerk)
    return client
