"""The worker runs the *shipped* model correctly: products whose title and photo agree get
the obvious category. Catches a worker that loads the checkpoint but computes garbage (wrong
encoder weights, wrong preprocessing), which the plumbing tests would not notice."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.core.files.base import ContentFile

from prodcat_django.models import CategorySuggestion
from tests.e2e.harness import CeleryWorker, drawn_photo
from tests.e2e.waiting import assert_ready, wait_for_all
from tests.testapp.models import Product

# (title, drawn T-shirt-shaped photo colour or None for no photo, expected top label).
# Title and photo must agree: a T-shirt drawing beside a "Top" title is a fair Tshirts call.
OBVIOUS = [
    ("Men Navy Blue Polo T-shirt", "navy", "Tshirts"),
    ("Roxy Women Mustard Yellow Top", None, "Tops"),
    ("Fastrack Men Black Analog Watch", None, "Watches"),
    ("Brown Leather Belt", None, "Belts"),
]


@pytest.mark.e2e
@pytest.mark.skipif(
    bool(os.environ.get("PRODCAT_E2E_CHECKPOINT")),
    reason="PRODCAT_E2E_CHECKPOINT replaces the shipped model; these labels are its own",
)
def test_obvious_products_get_the_obvious_category(
    redis_worker: CeleryWorker, label_categories: dict[str, Any]
) -> None:
    products = {}
    for title, color, expected in OBVIOUS:
        product = Product(title=title)
        if color is not None:
            product.image.save("p.jpg", ContentFile(drawn_photo(color)), save=False)
        product.save()  # post_save queues it
        products[product.pk] = expected
    ids = CategorySuggestion.objects.filter(object_id__in=[str(pk) for pk in products])

    rows = wait_for_all(list(ids.values_list("pk", flat=True)), redis_worker)

    got = {}
    for suggestion in rows:
        assert_ready(suggestion, redis_worker)
        got[int(suggestion.object_id)] = (suggestion.label, suggestion.score)
    assert {pk: label for pk, (label, _) in got.items()} == products, got
    assert all(score > 0.5 for _, score in got.values()), got
