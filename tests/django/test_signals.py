import pytest
from django.core import serializers
from django.core.files.base import ContentFile

from prodcat_django.models import CategorySuggestion, SuggestionStatus
from prodcat_django.services import dispatching
from tests.shop_data import png_bytes
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


def _rows(product):
    return list(CategorySuggestion.objects.for_product(product).order_by("pk"))


def test_creating_a_product_queues_one_pending_suggestion(make_product):
    product = make_product(title="Suede loafers", image=png_bytes())
    [suggestion] = _rows(product)
    assert suggestion.status == SuggestionStatus.PENDING
    assert suggestion.is_current
    assert len(suggestion.fingerprint) == 64
    assert suggestion.dispatched_at is None  # nothing is sent before the commit


def test_task_is_sent_only_after_commit(make_product, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        product = make_product(title="Suede loafers")
    # One sends the task; the others only remember what the commit made current.
    assert [type(c) for c in callbacks].count(dispatching._CommitDispatch) == 1
    assert _rows(product)[0].dispatched_at is None


def test_unchanged_inputs_make_no_new_suggestion(make_product):
    product = make_product(title="Suede loafers", image=png_bytes())
    product.price = 99
    product.save()
    product.title = "  Suede   loafers "  # same after normalisation
    product.save()
    assert len(_rows(product)) == 1


def test_changed_title_obsoletes_the_old_suggestion(make_product, commit_so_far):
    product = make_product(title="Suede loafers")
    commit_so_far()
    product.title = "Suede loafers, brown"
    product.save()
    old, new = _rows(product)
    assert (old.status, old.is_current) == (SuggestionStatus.OBSOLETE, False)
    assert (new.status, new.is_current) == (SuggestionStatus.PENDING, True)
    assert product.category_suggestion == new


def test_changed_image_obsoletes_the_old_suggestion(make_product, commit_so_far):
    product = make_product(title="Vase", image=png_bytes("red"))
    commit_so_far()
    product.image.save("new.png", ContentFile(png_bytes("blue")), save=True)
    old, new = _rows(product)
    assert old.status == SuggestionStatus.OBSOLETE
    assert new.fingerprint != old.fingerprint


def test_a_decided_suggestion_keeps_its_decision_when_superseded(make_product):
    product = make_product(title="Vase")
    CategorySuggestion.objects.for_product(product).update(status=SuggestionStatus.ACCEPTED)
    product.title = "Glass vase"
    product.save()
    old, _new = _rows(product)
    assert (old.status, old.is_current) == (SuggestionStatus.ACCEPTED, False)


def test_saving_only_other_fields_is_skipped_without_reading_the_image(make_product):
    product = make_product(title="Vase", image=png_bytes())
    product.image.storage.delete(product.image.name)  # would change the fingerprint if read
    product.price = 5
    product.save(update_fields=["price"])
    assert len(_rows(product)) == 1


def test_raw_fixture_loads_are_skipped():
    data = serializers.serialize("json", [Product(pk=77, title="Fixture boots")])
    for obj in serializers.deserialize("json", data):
        obj.save()  # raw=True, like loaddata
    assert Product.objects.filter(pk=77).exists()
    assert not CategorySuggestion.objects.filter(object_id="77").exists()


def test_auto_suggest_off(make_product, settings):
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": False}
    product = make_product(title="Boots")
    assert _rows(product) == []


def test_deleting_a_product_retires_its_suggestion(make_product):
    product = make_product(title="Boots")
    pk = product.pk
    product.delete()
    [row] = CategorySuggestion.objects.filter(object_id=str(pk))
    assert (row.status, row.is_current) == (SuggestionStatus.OBSOLETE, False)


def test_a_broken_suggestion_machinery_never_fails_the_save(settings, monkeypatch, caplog):
    from prodcat_django import services

    def broken(product, **kwargs):
        raise RuntimeError("suggestion table is gone")

    monkeypatch.setattr(services, "request_suggestion", broken)  # fault injection
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    product = Product.objects.create(title="Boots")
    assert Product.objects.filter(pk=product.pk).exists()
    assert "could not request a suggestion for testapp.Product" in caplog.text
    # the test settings propagate it instead, so programming errors surface in tests
    settings.DEBUG_PROPAGATE_EXCEPTIONS = True
    with pytest.raises(RuntimeError, match="suggestion table is gone"):
        Product.objects.create(title="Boots")


def test_saves_through_a_proxy_are_seen(commit_so_far):
    from tests.testapp.models import ProductToReview

    proxy = ProductToReview.objects.create(title="Boots")
    product = Product.objects.get(pk=proxy.pk)
    [suggestion] = _rows(product)
    assert proxy.category_suggestion == suggestion
    commit_so_far()
    proxy.title = "Rain boots"
    proxy.save()
    assert len(_rows(product)) == 2
    proxy.delete()
    assert not CategorySuggestion.objects.current().exists()


def test_unregistered_models_are_ignored(categories):
    from tests.testapp.models import Category

    Category.objects.create(name="Belts", slug="belts")
    assert not CategorySuggestion.objects.exists()


def test_losing_a_race_for_the_current_row_is_not_an_error(make_product, settings, monkeypatch):
    from prodcat_django import services
    from prodcat_django.models import SuggestionQuerySet

    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": False}
    product = make_product(title="Boots")
    original_create = SuggestionQuerySet.create

    def rival_first(self, **fields):
        # Another process inserts the product's current row between our read and our insert.
        monkeypatch.setattr(SuggestionQuerySet, "create", original_create)
        original_create(self, **{**fields, "fingerprint": "rival"})
        return original_create(self, **fields)

    monkeypatch.setattr(SuggestionQuerySet, "create", rival_first)
    assert services.request_suggestion(product) is None
    # Only our savepoint was rolled back (in this single-connection simulation the rival's
    # row with it); the surrounding transaction is intact and usable.
    assert _rows(product) == []
    product.title = "Rain boots"
    product.save()
    assert services.request_suggestion(product) is not None
