"""Each plain-shop shape, through the whole path a shop sees: save -> suggestion (the worker
runs at the commit; eager Celery) -> accept, with the adapter reading and writing the product.

The checkpoint knows one label, "Shoes", so every suggestion is known in advance."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from prodcat_django import services
from prodcat_django.fingerprint import compute_fingerprint
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from prodcat_django.registry import get_adapter
from tests.shapes.models import (
    Article,
    BeardCategory,
    BeardItem,
    Category,
    CdnItem,
    LabelledItem,
    MpttCategory,
    MpttItem,
    TaggedItem,
    TaggedItemImage,
)
from tests.shop_data import png_bytes

pytestmark = pytest.mark.django_db


def _rows(product):
    return list(CategorySuggestion.objects.for_product(product).order_by("pk"))


def _ready(product, commit_so_far):
    """Commit the saves so far: the task runs (eagerly) and the current row is returned."""
    commit_so_far(execute=True)
    suggestion = CategorySuggestion.objects.current_for(product).get()
    assert suggestion.status == SuggestionStatus.READY, suggestion.error
    return suggestion


def test_name_and_description(shoes_checkpoint, reviewer, commit_so_far):
    shoes = Category.objects.create(name="Shoes", slug="shoes")
    article = Article.objects.create(name="Trail runner", description="Waterproof, leather.")
    [row] = _rows(article)
    assert row.fingerprint == compute_fingerprint("Trail runner\nWaterproof, leather.", None)
    suggestion = _ready(article, commit_so_far)
    assert suggestion.category_pk == str(shoes.pk)

    services.accept(suggestion, user=reviewer)
    article.refresh_from_db()
    assert article.category == shoes
    # The description is an input too: changing it asks for a new suggestion.
    article.description = "Waterproof, suede."
    article.save()
    assert len(_rows(article)) == 2


def test_image_at_a_url(shoes_checkpoint, reviewer, image_server, commit_so_far):
    shoes = Category.objects.create(name="Shoes", slug="shoes")
    url = image_server.add("/img/boot.png", png_bytes("brown"), headers={"ETag": '"v1"'})
    item = CdnItem.objects.create(title="Boot", image_url=url, image_etag='"v1"')
    [row] = _rows(item)
    assert image_server.hits == []  # the saving (web) process never downloads it
    assert row.fingerprint == compute_fingerprint("Boot", None, image_identity=f'{url}\0"v1"\0')
    suggestion = _ready(item, commit_so_far)
    assert image_server.hits == ["/img/boot.png"]  # the worker fetched it, once
    assert suggestion.explanation["modality_weight"]["image"] > 0
    services.accept(suggestion, user=reviewer)
    item.refresh_from_db()
    assert item.category == shoes

    # A new ETag at the same URL is a new image: a new suggestion, still no download here.
    item.image_etag = '"v2"'
    item.save()
    assert len(_rows(item)) == 2
    assert image_server.hits == ["/img/boot.png"]


def test_unreachable_url_image_fails_the_row_with_a_reason(
    shoes_checkpoint, image_server, commit_so_far
):
    item = CdnItem.objects.create(title="Boot", image_url=image_server.url("/missing.png"))
    commit_so_far(execute=True)
    suggestion = CategorySuggestion.objects.current_for(item).get()
    assert suggestion.status == SuggestionStatus.FAILED
    assert "unreadable image" in suggestion.error
    assert "HTTP 404" in suggestion.error


def test_char_field_of_names(shoes_checkpoint, reviewer, commit_so_far):
    item = LabelledItem.objects.create(title="Suede loafers")
    suggestion = _ready(item, commit_so_far)
    assert suggestion.category_pk == "Shoes"  # the name is the key
    services.accept(suggestion, user=reviewer)
    item.refresh_from_db()
    assert item.category == "Shoes"
    # A correction is a name too (any name that fits the field: there are no choices).
    services.reject(suggestion, user=reviewer, category="Loafers", override=True)
    item.refresh_from_db()
    assert item.category == "Loafers"
    assert CategorySuggestion.objects.get(pk=suggestion.pk).correction_pk == "Loafers"


def _mptt_tree():
    footwear = MpttCategory.objects.create(name="Footwear")
    sale = MpttCategory.objects.create(name="Sale")
    shoes = MpttCategory.objects.create(name="Shoes", parent=footwear)
    sale_shoes = MpttCategory.objects.create(name="Shoes", parent=sale)
    return shoes, sale_shoes


def _beard_tree():
    footwear = BeardCategory.objects.add_root({"name": "Footwear"})
    sale = BeardCategory.objects.add_root({"name": "Sale"})
    shoes = BeardCategory.objects.add_child(footwear, {"name": "Shoes"})
    sale_shoes = BeardCategory.objects.add_child(sale, {"name": "Shoes"})
    return BeardCategory.objects.get(pk=shoes.pk), BeardCategory.objects.get(pk=sale_shoes.pk)


@pytest.mark.parametrize(
    ("item_model", "make_tree"), [(MpttItem, _mptt_tree), (BeardItem, _beard_tree)]
)
def test_tree_categories_by_path(
    item_model, make_tree, shoes_checkpoint, reviewer, commit_so_far, settings
):
    shoes, sale_shoes = make_tree()
    # Two leaves named "Shoes": the label matches neither until LABEL_PATHS says which.
    item = item_model.objects.create(title="Leather brogues")
    suggestion = _ready(item, commit_so_far)
    assert suggestion.label == "Shoes"
    assert suggestion.category_pk == ""
    # A reviewer (or the API) names the category by its path.
    services.accept(suggestion, user=reviewer, category="Sale > Shoes")
    item.refresh_from_db()
    assert item.category == sale_shoes

    # The label's path alone decides here: without the neighbour head, which would rightly
    # suggest "Sale > Shoes" for the next brogue, where the reviewer just filed the first.
    settings.PRODCAT = {
        **settings.PRODCAT,
        "LABEL_PATHS": {"Shoes": "Footwear > Shoes"},
        "NEIGHBOURS": False,
    }
    other = item_model.objects.create(title="Suede brogues")
    suggestion = _ready(other, commit_so_far)
    assert suggestion.category_pk == str(shoes.pk)
    adapter = get_adapter(other)
    assert adapter.category_labels([str(shoes.pk), str(sale_shoes.pk)]) == {
        str(shoes.pk): "Footwear > Shoes",
        str(sale_shoes.pk): "Sale > Shoes",
    }
    services.accept(suggestion, user=reviewer)
    other.refresh_from_db()
    assert other.category == shoes


def test_many_to_many_with_the_image_in_a_related_model(
    shoes_checkpoint, reviewer, commit_so_far, settings
):
    placeholder = Category.objects.create(name="Uncategorised")
    shoes = Category.objects.create(name="Shoes", slug="shoes")
    kept = Category.objects.create(name="New in")
    photo = png_bytes("navy")
    # The shop's form: the product, then its image formset, in one transaction.
    with transaction.atomic():
        item = TaggedItem.objects.create(title="Canvas sneakers")
        item.categories.add(placeholder, kept)
        image = TaggedItemImage(item=item)
        image.image.save("sneaker.png", ContentFile(photo), save=True)
    [row] = _rows(item)  # one suggestion, for the title *and* the image
    assert row.fingerprint == compute_fingerprint("Canvas sneakers", photo)
    adapter = get_adapter(item)
    assert set(adapter.get_categories(item)) == {str(placeholder.pk), str(kept.pk)}
    assert adapter.is_placeholder(str(placeholder.pk))

    suggestion = _ready(item, commit_so_far)
    services.accept(suggestion, user=reviewer)
    # Added; the placeholder is gone; the other category stays.
    assert set(item.categories.all()) == {shoes, kept}

    # A later image (another request) is a change of the inputs: a new suggestion.
    later = TaggedItemImage(item=item, display_order=0)
    image.display_order = 1
    image.save()
    later.image.save("front.png", ContentFile(png_bytes("white")), save=True)
    assert len(_rows(item)) == 2
    # And so is deleting it.
    commit_so_far()
    later.delete()
    assert len(_rows(item)) == 3
    assert _rows(item)[-1].fingerprint == compute_fingerprint("Canvas sneakers", photo)
