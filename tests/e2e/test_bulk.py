"""The admin's bulk "Suggest categories" action on 40 products, through its confirmation
page, processed in chunks by the real worker with batched inference."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.urls import reverse

from prodcat_django.models import CategorySuggestion, SuggestionBatch
from tests.e2e.harness import CeleryWorker, drawn_photo
from tests.e2e.waiting import assert_ready, wait_for_all
from tests.testapp.models import Product

N_PRODUCTS = 40
COLORS = ["navy", "crimson", "forestgreen", "black", "goldenrod", "slategray", "orchid", "tan"]
TITLES = [
    "Men Navy Blue Polo T-shirt",
    "Women Black Handbag",
    "Unisex Analog Steel Watch",
    "Men White Running Shoes",
    "Women Floral Kurta",
]


@pytest.fixture
def products(no_auto_suggest: None, transactional_db: None) -> list[Product]:
    made = []
    for i in range(N_PRODUCTS):
        product = Product(title=f"{TITLES[i % len(TITLES)]} #{i}")
        photo = drawn_photo(COLORS[i % len(COLORS)], size=240)
        product.image.save(f"bulk-{i}.jpg", ContentFile(photo), save=False)
        product.save()
        made.append(product)
    assert not CategorySuggestion.objects.exists()  # AUTO_SUGGEST is off: nothing queued yet
    return made


@pytest.mark.e2e
def test_bulk_action_queues_every_product_and_the_worker_finishes_them(
    redis_worker: CeleryWorker,
    label_categories: dict[str, Any],
    products: list[Product],
    admin_client_e2e: Any,
    settings: Any,
) -> None:
    settings.PRODCAT = {**settings.PRODCAT, "BULK_CONFIRM_THRESHOLD": 20, "BULK_CHUNK_SIZE": 8}
    changelist = reverse("admin:testapp_product_changelist")
    received_before = received_tasks(redis_worker)
    # "Select all 40" in the changelist: the action works on the whole queryset.
    data = {
        "action": "suggest_categories",
        "select_across": "1",
        "index": "0",
        "_selected_action": [str(products[0].pk)],
    }

    confirm = admin_client_e2e.post(changelist, data)
    assert confirm.status_code == 200  # more than BULK_CONFIRM_THRESHOLD: asks first
    assert f"Yes, queue {N_PRODUCTS} products" in confirm.content.decode()
    assert not CategorySuggestion.objects.exists()

    done = admin_client_e2e.post(changelist, {**data, "post": "yes"})
    assert done.status_code == 302
    messages = [str(m) for m in get_messages(done.wsgi_request)]
    assert any(f"Queued {N_PRODUCTS} products in 5 tasks" in m for m in messages), messages

    batch = SuggestionBatch.objects.get()
    assert batch.total == N_PRODUCTS
    ids = list(CategorySuggestion.objects.filter(batch=batch).values_list("pk", flat=True))
    assert len(ids) == N_PRODUCTS

    rows = wait_for_all(ids, redis_worker)

    for suggestion in rows:
        assert_ready(suggestion, redis_worker)
        assert suggestion.fingerprint  # computed by the worker when it read the product
        assert suggestion.category_pk == str(label_categories[suggestion.label].pk)
    assert batch.progress()["finished"] is True
    assert {s.object_id for s in rows} == {str(p.pk) for p in products}
    progress_page = admin_client_e2e.get(
        reverse("admin:prodcat_django_suggestionbatch_progress", args=[batch.pk])
    )
    assert progress_page.status_code == 200
    # Batched: the worker got 5 tasks of 8 products, not one task per product.
    assert received_tasks(redis_worker) - received_before == 5


def received_tasks(worker: CeleryWorker) -> int:
    return sum(
        1
        for line in worker.log_text().splitlines()
        if "Task prodcat.run_suggestions[" in line and line.endswith(" received")
    )
