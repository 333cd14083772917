"""The API end to end: queue a suggestion (202), poll it until the real worker finished it,
accept it; and the synchronous suggest endpoint agreeing with the worker on the same input."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.e2e.harness import CeleryWorker, drawn_photo, wait_until
from tests.e2e.waiting import FINISHED, FIRST_RESULT_TIMEOUT
from tests.testapp.models import Product

PERMISSIONS = ("view_categorysuggestion", "review_categorysuggestion", "change_product")


@pytest.fixture
def merchant(transactional_db: None) -> User:
    user = User.objects.create_user("merchant", password="s3cret-pw")
    user.user_permissions.add(*Permission.objects.filter(codename__in=PERMISSIONS))
    return user


@pytest.fixture
def api(merchant: User) -> APIClient:
    """Real HTTP Basic credentials, through the API's own authentication classes."""
    client = APIClient()
    token = base64.b64encode(b"merchant:s3cret-pw").decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    return client


@pytest.fixture
def product(no_auto_suggest: None, transactional_db: None) -> Product:
    product = Product(title="Men Navy Blue Polo T-shirt")
    product.image.save("polo.jpg", ContentFile(drawn_photo("navy")), save=False)
    product.save()
    return product


@pytest.mark.e2e
def test_queue_poll_accept(
    redis_worker: CeleryWorker, label_categories: dict[str, Any], api: APIClient, product: Product
) -> None:
    url = reverse("prodcat_api:product-suggestions", kwargs={"pk": product.pk})
    queued = api.post(f"{url}?model=testapp.Product")
    assert queued.status_code == 202, queued.content
    assert queued.json()["status"] == "pending"

    body = wait_until(
        lambda: api.get(queued["Location"]).json(),
        lambda data: data["status"] in FINISHED,
        timeout=FIRST_RESULT_TIMEOUT,
        what="the queued suggestion to be finished",
        on_timeout=redis_worker.log_tail,
    )
    assert body["status"] == "ready", body
    assert body["category"]["name"] == body["label"]

    accepted = api.post(reverse("prodcat_api:suggestion-accept", kwargs={"pk": body["id"]}))

    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["reviewed_by"] == "merchant"
    product.refresh_from_db()
    assert product.category == label_categories[body["label"]]


@pytest.mark.e2e
def test_synchronous_suggest_agrees_with_the_worker(
    redis_worker: CeleryWorker, label_categories: dict[str, Any], api: APIClient, product: Product
) -> None:
    url = reverse("prodcat_api:product-suggestions", kwargs={"pk": product.pk})
    assert api.post(f"{url}?model=testapp.Product").status_code == 202
    stored = wait_until(
        lambda: CategorySuggestion.objects.current_for(product).get(),
        lambda s: s.status in FINISHED,
        timeout=FIRST_RESULT_TIMEOUT,
        what="the worker's suggestion",
        on_timeout=redis_worker.log_tail,
    )
    assert stored.status == SuggestionStatus.READY, stored.error

    # The same title and photo bytes, classified in this (web) process.
    with product.image.open("rb") as f:
        photo = SimpleUploadedFile("polo.jpg", f.read(), content_type="image/jpeg")
    response = api.post(
        reverse("prodcat_api:suggest"),
        {"title": product.title, "image": photo, "top_k": 3},
        format="multipart",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["label"] for item in body["labels"]] == [item["label"] for item in stored.labels]
    # The worker merges the model's scores with the neighbour head (issue 10: products filed by
    # earlier tests are in the index), which moves them a little; suggest/ is the model alone.
    for mine, theirs in zip(body["labels"], stored.labels, strict=True):
        assert mine["score"] == pytest.approx(theirs["score"], abs=0.05)
    assert body["model"] == {"name": stored.model_name, "version": stored.model_version}


@pytest.mark.e2e
def test_saved_product_is_found_through_the_list_and_corrected(
    redis_worker: CeleryWorker, label_categories: dict[str, Any], api: APIClient
) -> None:
    product = Product(title="Women Black Handbag")  # saved with auto-suggest on: queued
    product.image.save("bag.jpg", ContentFile(drawn_photo("black")), save=False)
    product.save()
    url = reverse("prodcat_api:product-suggestions", kwargs={"pk": product.pk})
    listing = f"{url}?model=testapp.Product"

    current = wait_until(
        lambda: api.get(listing).json()["results"][0],
        lambda data: data["status"] in FINISHED,
        timeout=FIRST_RESULT_TIMEOUT,
        what="the suggestion queued on save",
        on_timeout=redis_worker.log_tail,
    )
    assert current["is_current"] and current["status"] == "ready", current

    rejected = api.post(
        reverse("prodcat_api:suggestion-reject", kwargs={"pk": current["id"]}),
        {"category": "handbags", "note": "it is a bag"},  # by name, any case
        format="json",
    )

    assert rejected.status_code == 200, rejected.content
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["correction"]["name"] == "Handbags"
    product.refresh_from_db()
    assert product.category == label_categories["Handbags"]
