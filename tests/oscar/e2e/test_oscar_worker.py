"""End to end in the Oscar project: a product created through Oscar's dashboard (product and
image formset in one request, on PostgreSQL), a real Celery worker on Redis with the shipped
model, then the merchant accepting from the dashboard's review page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from oscar.core.loading import get_model

from prodcat_django.models import CategorySuggestion
from tests.e2e.harness import drawn_photo
from tests.e2e.waiting import assert_ready, wait_for_suggestion
from tests.oscar.conftest import CATALOGUE_PERMISSIONS, make_staff
from tests.oscar.forms import create_through_dashboard

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def label_tree(transactional_db: None, checkpoint_info: Any) -> dict[str, Any]:
    """Every checkpoint label as a leaf of an Oscar tree (under "Fashion"), and the
    "Uncategorised" placeholder new products are filed under."""
    from oscar.apps.catalogue.categories import create_from_breadcrumbs

    tree = {
        label: create_from_breadcrumbs(f"Fashion > {label}") for label in checkpoint_info.labels
    }
    tree["Uncategorised"] = create_from_breadcrumbs("Uncategorised")
    return tree


def test_a_dashboard_product_is_suggested_by_the_worker_and_accepted(redis_worker, label_tree):
    reviewer = make_staff(
        "reviewer", *CATALOGUE_PERMISSIONS, "prodcat_django.review_categorysuggestion"
    )
    client = Client()
    client.force_login(reviewer)
    goods = ProductClass.objects.create(name="Goods", requires_shipping=False, track_stock=False)
    product = create_through_dashboard(
        client,
        goods,
        label_tree["Uncategorised"],
        "Men's navy cotton polo T-shirt",
        drawn_photo("navy"),
    )
    suggestion = wait_for_suggestion(product, redis_worker)
    assert_ready(suggestion, redis_worker)
    # One request saved the product, then its image: one suggestion, made with the image.
    assert CategorySuggestion.objects.for_product(product).count() == 1
    category = label_tree[suggestion.label]
    assert suggestion.category_pk == str(category.pk)

    page = client.get(reverse("prodcat_oscar:prodcat-suggestion-list")).content.decode()
    assert escape("Men's navy cotton polo T-shirt") in page and escape(category.full_name) in page
    response = client.post(
        reverse("prodcat_oscar:prodcat-suggestion-review", args=[suggestion.pk]),
        {"action": "accept"},
    )
    assert response.status_code == 302
    assert [c.full_name for c in product.categories.all()] == [f"Fashion > {suggestion.label}"]


def test_a_variant_gets_no_suggestion_from_the_worker(redis_worker, label_tree):
    goods = ProductClass.objects.create(name="Goods", requires_shipping=False, track_stock=False)
    parent = Product.objects.create(
        title="Oxford shirt", structure=Product.PARENT, product_class=goods
    )
    parent.categories.add(label_tree["Uncategorised"])
    child = Product.objects.create(
        title="Oxford shirt, blue", structure=Product.CHILD, parent=parent
    )
    assert_ready(wait_for_suggestion(parent, redis_worker), redis_worker)
    # Rows are made when a save commits, never by the worker: the child has none.
    assert not CategorySuggestion.objects.for_product(child).exists()
