import pytest
from django.core.exceptions import ImproperlyConfigured

import prodcat_django
from prodcat_django import registry
from prodcat_django.models import CategorySuggestion, GenericSuggestionBase
from tests.testapp.models import Category, Product, ProductSuggestion, VendorItem


def test_product_registered_from_models_py():
    spec = registry.get_adapter(Product)
    assert spec.title_field == "title"
    assert spec.image_field == "image"
    assert spec.category_field == "category"
    assert spec.category_model is Category  # inferred from the foreign key
    assert spec.label == "testapp.Product"
    assert registry.get_adapter(Product(title="x")) is spec


def test_model_registered_from_app_config_ready():
    spec = registry.get_adapter(VendorItem)
    assert spec.category_model is Category
    assert spec.suggestion_attr == "prodcat_suggestion"
    assert isinstance(
        VendorItem.__dict__["prodcat_suggestion"], registry.CurrentSuggestionDescriptor
    )


def test_registering_twice_is_a_clear_error():
    with pytest.raises(registry.AlreadyRegistered, match=r"testapp\.Product is already registered"):
        prodcat_django.register(
            Product, title_field="title", image_field="image", category_field="category"
        )


def test_unregistered_model():
    assert not registry.is_registered(Category)
    with pytest.raises(registry.NotRegistered, match=r"testapp\.Category is not registered"):
        registry.get_adapter(Category)
    with pytest.raises(registry.NotRegistered):
        registry.get_adapter_by_label("testapp.Nothing")
    assert registry.get_adapter_by_label("TESTAPP.product").model is Product


def test_register_rejects_non_models_and_abstract_models():
    with pytest.raises(TypeError):
        prodcat_django.register(object, title_field="a", category_field="b")
    with pytest.raises(ImproperlyConfigured, match="abstract"):
        prodcat_django.register(GenericSuggestionBase, title_field="label", category_field="batch")


def test_attribute_clash_is_refused():
    with pytest.raises(ImproperlyConfigured, match="already has an attribute 'label'"):
        prodcat_django.register(
            ProductSuggestion, title_field="label", category_field="batch", suggestion_attr="label"
        )
    assert not registry.is_registered(ProductSuggestion)


def test_register_and_unregister_round_trip():
    spec = prodcat_django.register(ProductSuggestion, title_field="label", category_field="batch")
    try:
        assert registry.get_adapter(ProductSuggestion) is spec
        assert spec in registry.registered_adapters()
        assert isinstance(
            ProductSuggestion.category_suggestion, registry.CurrentSuggestionDescriptor
        )
    finally:
        registry.unregister(ProductSuggestion)
    assert not registry.is_registered(ProductSuggestion)
    assert not hasattr(ProductSuggestion, "category_suggestion")
    with pytest.raises(registry.NotRegistered):
        registry.unregister(ProductSuggestion)


@pytest.mark.django_db
def test_descriptor_returns_current_suggestion(make_product):
    product = make_product()
    current = CategorySuggestion.objects.current_for(product).get()
    assert product.category_suggestion == current
    assert Product(title="unsaved").category_suggestion is None
    with pytest.raises(AttributeError, match="read-only"):
        product.category_suggestion = None


@pytest.mark.django_db
def test_descriptor_for_uuid_primary_keys(categories):
    item = VendorItem.objects.create(name="Steel diver watch")
    suggestion = item.prodcat_suggestion
    assert suggestion is not None
    assert suggestion.object_id == str(item.pk)
    assert suggestion.product == item


@pytest.mark.django_db
def test_prefetch_fills_the_descriptor(make_product, django_assert_num_queries):
    from prodcat_django.services import prefetch_current_suggestions

    products = [make_product(title=f"Product {n}") for n in range(3)]
    fresh = list(Product.objects.order_by("pk"))
    with django_assert_num_queries(1):
        prefetch_current_suggestions(fresh)
    with django_assert_num_queries(0):
        got = [p.category_suggestion for p in fresh]
    assert [s.object_id for s in got] == [str(p.pk) for p in products]


def test_a_char_field_of_names_has_no_category_model():
    adapter = registry.FieldAdapter(Product, title_field="title", category_field="title")
    assert adapter.problems() == []
    assert adapter.category_kind == "names"
    assert adapter.category_model is None
