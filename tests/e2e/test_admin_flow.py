"""A merchant saves a product in the admin; the real worker suggests its category; the
merchant accepts it in the review admin. Real PostgreSQL, Redis, Celery and model."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from prodcat_django.models import SuggestionDecision, SuggestionStatus
from tests.e2e.harness import CeleryWorker, drawn_photo
from tests.e2e.waiting import assert_ready, wait_for_suggestion
from tests.testapp.models import Product


@pytest.mark.e2e
def test_save_in_admin_suggest_in_worker_accept_in_review_admin(
    redis_worker: CeleryWorker,
    label_categories: dict[str, Any],
    checkpoint_info: Any,
    admin_client_e2e: Any,
) -> None:
    photo = SimpleUploadedFile("top.jpg", drawn_photo("goldenrod"), content_type="image/jpeg")
    response = admin_client_e2e.post(
        reverse("admin:testapp_product_add"),
        {"title": "Roxy Women Mustard Yellow Top", "image": photo, "category": "", "price": "19"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    product = Product.objects.get(title="Roxy Women Mustard Yellow Top")
    assert product.image.name  # the photo the worker will read

    suggestion = wait_for_suggestion(product, redis_worker)

    assert_ready(suggestion, redis_worker)
    assert (suggestion.model_name, suggestion.model_version) == (
        checkpoint_info.name,
        checkpoint_info.version,
    )
    assert len(suggestion.labels) == 3
    assert {item["label"] for item in suggestion.labels} <= set(checkpoint_info.labels)
    assert 0.0 < suggestion.score <= 1.0
    assert suggestion.category_pk == str(label_categories[suggestion.label].pk)
    # The product admin's column shows it.
    changelist = admin_client_e2e.get(reverse("admin:testapp_product_changelist"))
    assert suggestion.label in changelist.content.decode()

    response = admin_client_e2e.post(
        reverse("admin:prodcat_django_categorysuggestion_changelist"),
        {"action": "accept_selected", "_selected_action": [suggestion.pk]},
    )
    assert response.status_code == 302

    product.refresh_from_db()
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.ACCEPTED
    assert product.category == label_categories[suggestion.label]
    assert SuggestionDecision.objects.filter(suggestion=suggestion, username="boss").exists()
