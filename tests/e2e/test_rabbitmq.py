"""The same pipeline over RabbitMQ (AMQP), the other broker the issue names: a product saved
in the admin reaches a worker consuming from RabbitMQ and gets its suggestion."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.e2e.harness import CeleryWorker, drawn_photo
from tests.e2e.waiting import assert_ready, wait_for_suggestion
from tests.testapp.models import Product


@pytest.mark.e2e
def test_admin_save_is_suggested_through_rabbitmq(
    amqp_worker: CeleryWorker, label_categories: dict[str, Any], admin_client_e2e: Any
) -> None:
    photo = SimpleUploadedFile("watch.jpg", drawn_photo("slategray"), content_type="image/jpeg")
    response = admin_client_e2e.post(
        reverse("admin:testapp_product_add"),
        {"title": "Unisex Analog Steel Watch", "image": photo, "category": "", "price": "80"},
    )
    assert response.status_code == 302
    product = Product.objects.get(title="Unisex Analog Steel Watch")

    suggestion = wait_for_suggestion(product, amqp_worker)

    assert_ready(suggestion, amqp_worker)
    # The RabbitMQ worker (not the Redis one of the other tests) wrote it.
    assert f"'ready': [{suggestion.pk}]" in amqp_worker.log_text()
