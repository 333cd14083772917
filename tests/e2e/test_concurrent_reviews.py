"""Concurrent decisions and requests on real PostgreSQL (row locks are real there, unlike SQLite):
10 simultaneous accepts of one suggestion give one decision in the audit trail, and 20
simultaneous ``POST products/<pk>/suggestions/`` all answer 202 with a current suggestion.

Threads start together at a barrier, each with its own database connection and API client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from prodcat_django.models import CategorySuggestion, SuggestionDecision, SuggestionStatus
from tests.shop_data import make_user
from tests.testapp.models import Category, Product

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("postgres", "no_auto_suggest")]


def _together(n: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(i)`` in ``n`` threads released at once; the results (or exceptions) in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = call(i)
        except Exception as exc:  # reported by the test
            results[i] = exc
        finally:
            connection.close()  # each thread's own connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def reviewer(transactional_db: None) -> Any:
    return make_user(
        "reviewer",
        "view_categorysuggestion",
        "review_categorysuggestion",
        "view_product",
        "change_product",
    )


@pytest.fixture
def ready_suggestion(transactional_db: None) -> CategorySuggestion:
    category = Category.objects.create(name="Shoes", slug="shoes")
    product = Product.objects.create(title="Leather ankle boots")
    return CategorySuggestion.objects.create(
        content_type=ContentType.objects.get_for_model(Product),
        object_id=str(product.pk),
        status=SuggestionStatus.READY,
        labels=[{"label": "Shoes", "score": 0.9}],
        label="Shoes",
        score=0.9,
        category_pk=str(category.pk),
        product_category_pk="",
        model_name="tiny",
        model_version="0.0.1",
    )


def test_ten_concurrent_accepts_give_one_decision(ready_suggestion, reviewer) -> None:
    url = reverse("prodcat_api:suggestion-accept", kwargs={"pk": ready_suggestion.pk})
    responses = _together(10, lambda i: _client(reviewer).post(url, {}, format="json"))
    codes = [getattr(r, "status_code", repr(r)) for r in responses]
    assert codes == [200] * 10, codes
    assert SuggestionDecision.objects.filter(suggestion=ready_suggestion).count() == 1
    product = Product.objects.get(pk=ready_suggestion.object_id)
    assert str(product.category_id) == ready_suggestion.category_pk


def test_ten_concurrent_different_decisions_keep_the_first_one(ready_suggestion, reviewer) -> None:
    accept = reverse("prodcat_api:suggestion-accept", kwargs={"pk": ready_suggestion.pk})
    reject = reverse("prodcat_api:suggestion-reject", kwargs={"pk": ready_suggestion.pk})
    responses = _together(
        10, lambda i: _client(reviewer).post(accept if i % 2 else reject, {}, format="json")
    )
    codes = sorted(getattr(r, "status_code", repr(r)) for r in responses)
    decisions = list(SuggestionDecision.objects.filter(suggestion=ready_suggestion))
    assert len(decisions) == 1, codes
    # The winner's kind answers 200 (the same decision again is a no-op), the other kind 409.
    winner = decisions[0].action
    assert codes.count(200) == 5 and codes.count(409) == 5, (winner, codes)


def test_twenty_concurrent_requests_for_one_product_all_answer_202(
    transactional_db: None,
) -> None:
    editor = make_user("editor", "view_categorysuggestion", "change_product")
    product = Product.objects.create(title="Canvas tote bag")
    url = (
        reverse("prodcat_api:product-suggestions", kwargs={"pk": product.pk})
        + "?model=testapp.Product"
    )
    responses = _together(20, lambda i: _client(editor).post(url))
    codes = [getattr(r, "status_code", repr(r)) for r in responses]
    assert codes == [202] * 20, codes
    current = CategorySuggestion.objects.current_for(product).get()  # exactly one current row
    ids = {r.json()["id"] for r in responses}
    assert current.pk in ids
    # A worker with its model preloaded may already be running (or have finished) the row.
    assert all(r.json()["status"] in {"pending", "running", "ready"} for r in responses)
