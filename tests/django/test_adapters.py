"""The adapter API as a shop meets it: register() with an adapter or field names (and its
immediate errors), several saves in one transaction making one suggestion, should_suggest, and
the input fields that decide whether a save asks for a new suggestion."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.db import transaction

import prodcat_django
from prodcat_django import registry, services
from prodcat_django.adapters import FieldAdapter, ProductAdapter
from prodcat_django.fingerprint import compute_fingerprint
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from prodcat_django.services import dispatching
from tests.shop_data import png_bytes
from tests.testapp.models import Category, Product, ProductSuggestion


def _rows(product):
    return list(CategorySuggestion.objects.for_product(product).order_by("pk"))


# --------------------------------------------------------------------------- register()


class TitleOnly(ProductAdapter):
    category_model = Category

    def get_text(self, product):
        return product.label

    def get_categories(self, product):
        return []

    def apply_category(self, product, category):
        pass


def test_register_an_adapter_class():
    adapter = prodcat_django.register(ProductSuggestion, adapter=TitleOnly)
    try:
        assert isinstance(adapter, TitleOnly)
        assert registry.get_adapter(ProductSuggestion) is adapter
        assert adapter.model is ProductSuggestion
        assert adapter.category_model is Category  # the class attribute, resolved
        assert adapter.label == "testapp.ProductSuggestion"
    finally:
        registry.unregister(ProductSuggestion)


def test_a_category_model_by_name_resolves_lazily():
    class ByName(TitleOnly):
        category_model = "testapp.Category"

    adapter = ByName(ProductSuggestion)
    assert adapter.category_model is Category
    assert ByName(ProductSuggestion, category_model=Product).category_model is Product


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((TitleOnly,), {"title_field": "label"}, TypeError, "an adapter or field names"),
        ((), {}, TypeError, "needs title_field= and category_field="),
        ((object,), {}, TypeError, "subclass of prodcat_django.adapters.ProductAdapter"),
        ((), {"title_field": "label", "category_field": "nope"}, ImproperlyConfigured, "no field"),
        (
            (),
            {"title_field": "label", "category_field": "batch", "image_field": "batch"},
            ImproperlyConfigured,
            "register an adapter",
        ),
        (
            (),
            {"title_field": "label", "category_field": "label", "category_model": Category},
            ImproperlyConfigured,
            "drop category_model=",
        ),
    ],
)
def test_register_refuses_at_once(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        prodcat_django.register(ProductSuggestion, *args, **kwargs)
    assert not registry.is_registered(ProductSuggestion)


def test_an_adapter_missing_methods_is_refused_at_register():
    class Half(ProductAdapter):
        def get_text(self, product):
            return ""

    with pytest.raises(ImproperlyConfigured, match="Half must define get_categories"):
        prodcat_django.register(ProductSuggestion, adapter=Half)


# --------------------------------------------------------------------------- one transaction


def _tasks(callbacks):
    """The on-commit callbacks that send a task (others remember what was committed)."""
    return [c for c in callbacks if isinstance(c, dispatching._CommitDispatch)]


@pytest.mark.django_db
def test_saves_in_one_transaction_make_one_suggestion_and_one_task(
    django_capture_on_commit_callbacks,
):
    photo = png_bytes("teal")
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        product = Product.objects.create(title="Boots")  # the form's first save: title only
        product.image.save("boots.png", ContentFile(photo), save=True)  # then the image
        other = Product.objects.create(title="Vase")
    [row] = _rows(product)
    assert row.fingerprint == compute_fingerprint("Boots", photo)  # the final inputs
    assert row.status == SuggestionStatus.PENDING
    [task] = _tasks(callbacks)  # one task for everything the transaction queued
    assert task.ids == [row.pk, _rows(other)[0].pk]


@pytest.mark.django_db
def test_a_later_transaction_makes_a_new_suggestion(make_product, commit_so_far):
    product = make_product(title="Boots")
    commit_so_far()
    product.title = "Rain boots"
    product.save()
    old, new = _rows(product)
    assert old.status == SuggestionStatus.OBSOLETE
    assert new.fingerprint == compute_fingerprint("Rain boots", None)


@pytest.mark.django_db
def test_a_rolled_back_savepoint_drops_its_dispatch(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            Product.objects.create(title="Never")
            raise RuntimeError
        product = Product.objects.create(title="Boots")
    [row] = CategorySuggestion.objects.all()
    assert row.object_id == str(product.pk)
    assert [c.ids for c in _tasks(callbacks)] == [[row.pk]]
    assert not dispatching.queued_in_this_transaction(row.pk + 1000)


# --------------------------------------------------------------------------- should_suggest


class NotFree(FieldAdapter):
    """Products priced 0 (say, samples) get no suggestions."""

    def should_suggest(self, product):
        return product.price != 0

    def suggestable(self, queryset):
        return queryset.exclude(price=0)


@pytest.fixture
def not_free(monkeypatch):
    adapter = NotFree(Product, title_field="title", image_field="image", category_field="category")
    monkeypatch.setitem(registry._registry, Product, adapter)
    return adapter


@pytest.mark.django_db
def test_should_suggest_false_makes_none_and_retires_the_current(not_free, commit_so_far):
    sample = Product.objects.create(title="Sample boots", price=0)
    assert _rows(sample) == []
    product = Product.objects.create(title="Boots", price=10)
    [row] = _rows(product)
    commit_so_far()
    product.price = 0
    product.save()
    row.refresh_from_db()
    assert (row.status, row.is_current) == (SuggestionStatus.OBSOLETE, False)
    # The bulk path leaves them out, and the worker checks too.
    batch = services.request_suggestions(Product.objects.all())
    assert batch.total == 0
    bulk_row = CategorySuggestion.objects.create(
        content_type=not_free.content_type, object_id=str(product.pk)
    )
    report = services.run_suggestions([bulk_row.pk])
    assert report.obsolete == [bulk_row.pk]


@pytest.mark.django_db
def test_a_save_of_other_fields_asks_for_nothing(make_product):
    product = make_product(title="Boots")
    adapter = registry.get_adapter(product)
    assert adapter.input_fields == {"title", "image"}
    product.price = 3
    product.save(update_fields=["price"])
    assert len(_rows(product)) == 1
