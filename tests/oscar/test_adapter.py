"""The Oscar adapter on real Oscar models: products made the Oscar way (the product, its
category rows, then its images), variants, the many-to-many and the category tree."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from oscar.core.loading import get_model

from prodcat_django import services
from prodcat_django.contrib.oscar.adapters import OscarProductAdapter
from prodcat_django.fingerprint import product_fingerprint
from prodcat_django.models import CategorySuggestion, SuggestionDecision, SuggestionStatus
from prodcat_django.registry import get_adapter
from tests.shop_data import png_bytes

Product = get_model("catalogue", "Product")
ProductImage = get_model("catalogue", "ProductImage")

pytestmark = pytest.mark.django_db


def rows(product):
    return list(CategorySuggestion.objects.for_product(product).order_by("pk"))


def ready(product):
    suggestion = CategorySuggestion.objects.current_for(product).get()
    assert suggestion.status == SuggestionStatus.READY, suggestion.error
    return suggestion


def test_the_add_on_registers_oscars_product_with_its_adapter():
    adapter = get_adapter(Product)
    assert isinstance(adapter, OscarProductAdapter)
    assert adapter.category_model is get_model("catalogue", "Category")


def test_title_and_primary_image_by_display_order(make_oscar_product):
    red, blue = png_bytes("red"), png_bytes("blue")
    product = make_oscar_product("Canvas tote", images=(red,))
    # An image added later with a lower display_order becomes the primary one, as in Oscar.
    image = ProductImage(product=product, display_order=0)
    image.original.save("blue.png", ContentFile(blue), save=False)
    product.images.update(display_order=1)
    image.save()
    adapter = get_adapter(Product)
    assert adapter.get_text(product) == "Canvas tote"
    assert product.primary_image() == image
    assert adapter.get_image(product).read() == blue


def current(product):
    return CategorySuggestion.objects.current_for(product).get()


def test_an_image_added_after_the_product_is_an_input(
    make_oscar_product, photo, model_checkpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_oscar_product("Leather ankle boots")
    title_only = current(product)
    assert title_only.status == SuggestionStatus.READY
    with django_capture_on_commit_callbacks(execute=True):
        image = ProductImage(product=product, display_order=0)
        image.original.save("boots.png", ContentFile(photo), save=False)
        image.save()
    with_image = current(product)
    assert with_image.pk != title_only.pk, "the title-only suggestion was made and is kept"
    assert with_image.fingerprint == product_fingerprint(product) != title_only.fingerprint
    title_only.refresh_from_db()
    assert (title_only.status, title_only.is_current) == (SuggestionStatus.OBSOLETE, False)


def test_deleting_the_image_requests_a_new_suggestion(
    make_oscar_product, photo, model_checkpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_oscar_product("Leather ankle boots", images=(photo,))
    with_image = current(product)
    with django_capture_on_commit_callbacks(execute=True):
        product.images.get().delete()
    without = current(product)
    assert without.fingerprint == product_fingerprint(product) != with_image.fingerprint
    assert without.status == SuggestionStatus.READY


def test_a_caption_change_is_not_a_new_input(make_oscar_product, photo):
    product = make_oscar_product("Leather ankle boots", images=(photo,))
    before = rows(product)
    image = product.images.get()
    image.caption = "Side view"
    image.save()
    assert rows(product) == before


def test_a_variant_is_never_suggested_for(make_oscar_product, model_checkpoint):
    parent = make_oscar_product("Oxford shirt", structure=Product.PARENT)
    child = make_oscar_product("", structure=Product.CHILD, parent=parent, images=(png_bytes(),))
    child.title = "Oxford shirt, blue, M"
    child.save()
    assert rows(child) == []
    assert rows(parent), "the parent is categorized like a standalone product"
    # The bulk path never queues the child either.
    batch = services.request_suggestions(Product.objects.all(), send=False)
    queued = set(CategorySuggestion.objects.filter(batch=batch).values_list("object_id", flat=True))
    assert queued == {str(parent.pk)}


def test_accept_files_the_product_under_the_oscar_category(
    make_oscar_product,
    oscar_categories,
    reviewer,
    model_checkpoint,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_oscar_product("Leather ankle boots", images=(png_bytes(),))
    suggestion = ready(product)
    shoes = oscar_categories["Shoes"]
    services.accept(suggestion, user=reviewer, category=shoes)
    product.refresh_from_db()
    # Added to the many-to-many, and the "Uncategorised" placeholder is gone.
    assert list(product.categories.all()) == [shoes]
    decision = SuggestionDecision.objects.get(suggestion=suggestion)
    assert decision.category_pk == str(shoes.pk)
    assert decision.previous_category_pk == str(oscar_categories["Uncategorised"].pk)


def test_accept_keeps_the_other_categories(make_oscar_product, oscar_categories, reviewer):
    product = make_oscar_product("Leather ankle boots", categories=("Uncategorised", "Bags"))
    adapter = get_adapter(Product)
    adapter.apply_category(product, oscar_categories["Shoes"])
    assert set(product.categories.all()) == {oscar_categories["Bags"], oscar_categories["Shoes"]}


def test_reject_with_a_correction_given_as_oscars_full_path(
    make_oscar_product,
    oscar_categories,
    reviewer,
    model_checkpoint,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_oscar_product("Weekend holdall")
    suggestion = ready(product)
    services.reject(suggestion, user=reviewer, category="Accessories > Bags")
    assert list(product.categories.all()) == [oscar_categories["Bags"]]
    suggestion.refresh_from_db()
    assert suggestion.correction_pk == str(oscar_categories["Bags"].pk)


def test_labels_are_oscars_full_category_paths(oscar_categories):
    adapter = get_adapter(Product)
    shoes = oscar_categories["Shoes"]
    assert adapter.category_label(shoes) == shoes.full_name == "Clothing > Shoes"
    keys = [str(c.pk) for c in oscar_categories.values()]
    assert adapter.category_labels(keys)[str(shoes.pk)] == "Clothing > Shoes"


def test_the_suggestion_matches_the_oscar_leaf_category(
    make_oscar_product, oscar_categories, model_checkpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_oscar_product("Leather ankle boots", images=(png_bytes(),))
    suggestion = ready(product)
    by_name = {c.name: str(c.pk) for c in oscar_categories.values()}
    assert suggestion.category_pk == by_name[suggestion.label]


def test_a_placeholder_only_product_is_not_human_decided(make_oscar_product, oscar_categories):
    adapter = get_adapter(Product)
    uncategorised = make_oscar_product("Boots")
    filed = make_oscar_product("Boots", categories=("Shoes",))
    assert adapter.is_human_decided(uncategorised) is False
    assert adapter.is_human_decided(filed) is True


def test_a_variant_cannot_be_filed(make_oscar_product, oscar_categories):
    from django.core.exceptions import ValidationError

    parent = make_oscar_product("Oxford shirt", structure=Product.PARENT)
    child = make_oscar_product("", structure=Product.CHILD, parent=parent)
    with pytest.raises(ValidationError):
        get_adapter(Product).apply_category(child, oscar_categories["Shoes"])
    assert not child.categories.exists()


@pytest.fixture
def confident_checkpoint(tmp_path_factory, model_checkpoint, settings):
    """A one-label checkpoint ("Shoes" at score 1.0, above its auto-accept threshold)."""
    from prodcat_django.classifier import clear_cache
    from prodcat_django.ml.testing import build_random_checkpoint

    path = build_random_checkpoint(tmp_path_factory.mktemp("one"), ["Shoes"], name="one")
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(path), "AUTO_ACCEPT": True}
    clear_cache()
    yield path
    clear_cache()


def test_auto_accept_files_a_placeholder_only_product_but_not_a_merchants_choice(
    make_oscar_product, oscar_categories, confident_checkpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        new = make_oscar_product("Leather ankle boots")
        chosen = make_oscar_product("Leather ankle boots, brown", categories=("Bags",))
    assert current(new).status == SuggestionStatus.ACCEPTED
    assert list(new.categories.all()) == [oscar_categories["Shoes"]]
    # The merchant filed this one under Bags: the suggestion waits for a human.
    assert current(chosen).status == SuggestionStatus.READY
    assert list(chosen.categories.all()) == [oscar_categories["Bags"]]
