"""Issue 12: a save of a product loaded from the database that changed none of its inputs asks
the database nothing once this process knows the product's current suggestion; every other
save still takes the path that can make a new one."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from prodcat_django import fingerprint
from prodcat_django.fingerprint import compute_fingerprint
from prodcat_django.models import CategorySuggestion
from prodcat_django.registry import loaded_inputs
from tests.shop_data import png_bytes
from tests.testapp.models import Product, ProductToReview

pytestmark = pytest.mark.django_db

SUGGESTIONS = "prodcat_django_categorysuggestion"


def _rows(product):
    return list(CategorySuggestion.objects.for_product(product).order_by("pk"))


def _current(product):
    return CategorySuggestion.objects.current_for(product).get()


@pytest.fixture
def known(make_product, commit_so_far, django_capture_on_commit_callbacks):
    """A product with a photo and a current suggestion, loaded from the database, that this
    process knows (its first unchanged save read the suggestion and the commit remembered it)."""

    def load(model=Product):
        product = make_product(title="Suede loafers", image=png_bytes("red"))
        commit_so_far()  # the request that created it has committed; its task is not run
        loaded = model._default_manager.get(pk=product.pk)
        with django_capture_on_commit_callbacks(execute=True):
            loaded.save()  # one read: the current fingerprint becomes known at the commit
        return loaded

    return load


def _save(product, **kwargs):
    with CaptureQueriesContext(connection) as queries:
        product.save(**kwargs)
    return [q["sql"] for q in queries.captured_queries]


def _own_update_only(sql, table="testapp_product"):
    return len(sql) == 1 and sql[0].startswith(f'UPDATE "{table}"')


def test_an_unchanged_save_of_a_known_product_makes_no_query(known):
    product = known()
    product.price = 12
    sql = _save(product)
    assert _own_update_only(sql), sql  # the save's own UPDATE, nothing from prodcat
    assert len(_rows(product)) == 1


def test_another_instance_loaded_later_is_known_too(known):
    product = known()
    again = Product.objects.get(pk=product.pk)
    sql = _save(again)
    assert _own_update_only(sql), sql


def test_a_proxy_instance_is_tracked(known):
    product = known(ProductToReview)
    sql = _save(product)
    assert _own_update_only(sql), sql


def test_a_fresh_process_reads_once(known):
    product = known()
    fingerprint.forget_all_current()  # what a new process knows
    sql = _save(product)
    assert len([s for s in sql if SUGGESTIONS in s]) == 1, sql
    assert not [s for s in sql if "FOR UPDATE" in s.upper()], sql


def test_a_title_change_makes_a_new_suggestion(known):
    product = known()
    product.title = "Suede loafers, brown"
    sql = _save(product)
    assert [s for s in sql if SUGGESTIONS in s], sql
    old, new = _rows(product)
    assert not old.is_current
    assert new.fingerprint == compute_fingerprint("Suede loafers, brown", png_bytes("red"))


def test_an_image_change_makes_a_new_suggestion(known):
    product = known()
    with CaptureQueriesContext(connection) as queries:
        product.image.save("blue.png", ContentFile(png_bytes("blue")), save=True)
    assert [q for q in queries.captured_queries if SUGGESTIONS in q["sql"]]
    assert _current(product).fingerprint == compute_fingerprint("Suede loafers", png_bytes("blue"))


def test_a_photo_rewritten_in_place_is_still_seen(known):
    product = known()
    with open(product.image.path, "wb") as fh:  # same name, new bytes, new size and mtime
        fh.write(png_bytes("blue") + b"\0" * 64)
    product.save()
    assert len(_rows(product)) == 2


def test_update_fields_without_inputs_keep_the_loaded_values(known):
    product = known()
    product.title = "Renamed, not saved"
    product.price = 3
    sql = _save(product, update_fields=["price"])
    assert _own_update_only(sql), sql  # no input saved: nothing to ask
    assert loaded_inputs(product) == (product.image.name, "Suede loafers")  # what the row holds
    sql = _save(product)  # now the title is written: not an unchanged save
    assert [s for s in sql if SUGGESTIONS in s], sql
    assert len(_rows(product)) == 2


def test_a_create_always_takes_the_full_path(known):
    product = known()
    twin = Product(title=product.title, image=product.image.name)  # same inputs, a new row
    sql = _save(twin)
    assert [s for s in sql if SUGGESTIONS in s], sql
    assert len(_rows(twin)) == 1


def test_a_stale_instance_is_not_taken_as_unchanged(known, django_capture_on_commit_callbacks):
    product = known()
    stale = Product.objects.get(pk=product.pk)
    product.title = "Suede loafers, brown"
    with django_capture_on_commit_callbacks(execute=True):
        product.save()  # this process now knows the new title's suggestion
    # `stale` was loaded before: saving it writes the old title back, so it needs a suggestion
    # for that title again, though it is unchanged since its own load.
    sql = _save(stale)
    assert [s for s in sql if SUGGESTIONS in s], sql
    assert _current(product).fingerprint == compute_fingerprint("Suede loafers", png_bytes("red"))


def test_a_rolled_back_change_is_not_remembered(known):
    product = known()
    product.title = "Never committed"
    with pytest.raises(RuntimeError), transaction.atomic():
        product.save()
        raise RuntimeError
    # The instance still says "Never committed" (as Django leaves it) and so does its loaded
    # snapshot; the rolled-back suggestion must not be taken as current.
    sql = _save(product)
    assert [s for s in sql if SUGGESTIONS in s], sql
    assert _current(product).fingerprint == compute_fingerprint("Never committed", png_bytes("red"))


def test_a_deferred_input_is_not_tracked(known):
    product = known()
    partial = Product.objects.only("pk", "price", "category").get(pk=product.pk)
    assert loaded_inputs(partial) is None
    partial.price = 4
    sql = _save(partial, update_fields=["price"])
    assert _own_update_only(sql), sql


def test_the_known_fingerprints_are_bounded(make_product, monkeypatch):
    monkeypatch.setattr(fingerprint._current, "size", 2)
    for n in range(4):
        fingerprint.remember_current(1, n, f"fp{n}")
    assert fingerprint.known_current(1, 0) is None
    assert fingerprint.known_current(1, 3) == "fp3"
    assert len(fingerprint._current) == 2
