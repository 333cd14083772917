"""The neighbour index and head (issue 10): storage, refresh, learning from decisions, the
merged ranking and the out-of-taxonomy verdict in the worker's run."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils.text import slugify

from prodcat_django import services
from prodcat_django.index import PortableIndex, VectorEntry, from_bytes, put_object, remove_object
from prodcat_django.index.store import current_revision
from prodcat_django.models import (
    CategoryDescription,
    CategorySuggestion,
    NeighbourSource,
    NeighbourVector,
    SuggestionStatus,
)
from prodcat_django.services import neighbours
from tests.neighbour_data import MUG_TITLES, mug_png
from tests.shop_data import make_user, media_root, png_bytes  # noqa: F401 - autouse fixture
from tests.testapp.models import Category, Product

pytestmark = pytest.mark.django_db


def _entry(ct: int, obj: str, category: str, vector: list[float], **kw: Any) -> VectorEntry:
    return VectorEntry(
        content_type_id=ct,
        object_id=obj,
        category_type_id=None,
        category_pk=category,
        source=kw.get("source", NeighbourSource.MERCHANT),
        vector=np.array(vector, dtype=np.float32),
        embedding_id="test-space",
    )


def _product_rows() -> Any:
    return NeighbourVector.objects.filter(content_type=ContentType.objects.get_for_model(Product))


def _reviewer():
    return make_user(
        "reviewer", "review_categorysuggestion", "change_product", "view_product", is_staff=True
    )


# --------------------------------------------------------------------------- the store


def test_vectors_round_trip_as_float16_bytes():
    from prodcat_django.index import to_bytes

    vector = np.array([0.25, -1.5, 3.0], dtype=np.float32)
    assert len(to_bytes(vector)) == 6
    assert np.allclose(from_bytes(to_bytes(vector)), vector)
    with pytest.raises(ValueError, match="NaN"):
        to_bytes([1.0, float("nan")])
    with pytest.raises(ValueError, match="1-d"):
        to_bytes(np.zeros((2, 2)))


def test_each_write_raises_the_revision_and_a_reader_applies_only_what_changed():
    ct = ContentType.objects.get_for_model(Product).pk
    index = PortableIndex("test-space", None)
    assert index.refresh() == 0 and index.head() is None

    put_object(ct, "1", [_entry(ct, "1", "mugs", [1, 0, 0])])
    put_object(ct, "2", [_entry(ct, "2", "bowls", [0, 1, 0])])
    assert current_revision() == 2
    assert index.refresh() == 2
    assert index.stats() == {
        "products": 2,
        "names": 0,
        "revision": 2,
        "bytes": index.stats()["bytes"],
        "pool": 0,
    }
    assert index.refresh() == 0  # nothing new: one query, nothing applied

    # Product 1 is filed elsewhere: its old row becomes a tombstone, in one revision.
    put_object(ct, "1", [_entry(ct, "1", "bowls", [1, 0, 0])])
    assert index.refresh() == 2  # the tombstone and the new row, nothing else
    assert set(index.head().scores(np.array([[1, 0, 0]]))[0]) == {"bowls"}

    assert remove_object(ct, "2") == 1
    assert remove_object(ct, "2") == 0  # already gone: no new revision
    index.refresh()
    assert index.stats()["products"] == 1
    rows = _product_rows().filter(object_id="1")
    assert {(r.category_pk, r.active) for r in rows} == {("mugs", False), ("bowls", True)}


def test_two_processes_indexes_agree_after_refresh():
    """Two in-memory indexes (as in two worker processes) over the same rows agree."""
    ct = ContentType.objects.get_for_model(Product).pk
    first, second = PortableIndex("test-space", None), PortableIndex("test-space", None)
    put_object(ct, "1", [_entry(ct, "1", "mugs", [1, 0, 0])])
    first.refresh()
    put_object(ct, "2", [_entry(ct, "2", "bowls", [0, 1, 0])])
    put_object(ct, "1", [_entry(ct, "1", "cups", [1, 0.1, 0])])
    first.refresh()
    second.refresh()  # one load from scratch, one incremental
    query = np.array([[1, 0.05, 0], [0, 1, 0]])
    assert first.head().scores(query) == second.head().scores(query)
    assert first.stats() == second.stats()


def test_a_rewound_database_reloads_the_index():
    ct = ContentType.objects.get_for_model(Product).pk
    index = PortableIndex("test-space", None)
    put_object(ct, "1", [_entry(ct, "1", "mugs", [1, 0, 0])])
    put_object(ct, "2", [_entry(ct, "2", "mugs", [1, 0, 0])])
    index.refresh()
    NeighbourVector.objects.all().delete()
    from prodcat_django.models import NeighbourIndexState

    NeighbourIndexState.objects.update(revision=0)
    put_object(ct, "3", [_entry(ct, "3", "bowls", [0, 1, 0])])
    index.refresh()
    assert index.stats()["products"] == 1


def test_undecided_products_shape_the_categories_known_by_name_alone(settings):
    """Day one: two categories with names only, whose titles say little and whose photos
    tell them apart; the shop's undecided products (ready suggestions and their vectors)
    turn each name into a prototype, photos included, re-read when the pool moved."""
    from prodcat_django.index import to_bytes
    from prodcat_django.ml.knn import pooled_embedding

    settings.PRODCAT = {"NEIGHBOUR_POOL_SECONDS": 0.0}
    ct = ContentType.objects.get_for_model(Product).pk
    rng = np.random.default_rng(0)
    centres = [([1, 0.6, 0, 0], [1, 0, 0]), ([0.6, 1, 0, 0], [0, 1, 0])]

    def rows(n):
        out = [
            pooled_embedding(
                np.asarray(t) + 0.6 * rng.standard_normal((n, 4)),
                np.asarray(i) + 0.15 * rng.standard_normal((n, 3)),
            )
            for t, i in centres
        ]
        return np.concatenate(out), np.repeat([0, 1], n)

    names = pooled_embedding(np.array([[1, 0.9, 0, 0], [0.9, 1, 0, 0]]), np.zeros((2, 3)))
    for key, vector in zip(("a", "b"), names, strict=True):
        put_object(
            ct,
            f"name-{key}",
            [_entry(ct, f"name-{key}", key, vector.tolist(), source=NeighbourSource.NAME)],
        )
    index = PortableIndex("test-space", None)
    index.use_pool([ct])
    index.refresh()
    test, truth = rows(40)

    def accuracy():
        head = index.head()
        keys = np.asarray(head.keys)
        return (keys[head.category_scores(test).argmax(1)] == np.asarray(["a", "b"])[truth]).mean()

    bare = accuracy()
    assert index.stats()["pool"] == 0  # no undecided product yet: the names alone
    pool, _ = rows(50)
    # The undecided products, plus a decided one and another space's vector (not in the pool).
    extra = [("x", SuggestionStatus.ACCEPTED, "test-space"), ("y", SuggestionStatus.READY, "other")]
    CategorySuggestion.objects.bulk_create(
        CategorySuggestion(
            content_type_id=ct,
            object_id=obj,
            status=status,
            embedding=to_bytes(vector),
            embedding_id=space,
        )
        for (obj, status, space), vector in zip(
            [(str(n), SuggestionStatus.READY, "test-space") for n in range(len(pool))] + extra,
            [*pool, pool[0], pool[0]],
            strict=True,
        )
    )
    assert accuracy() >= 0.95 > bare
    assert index.stats()["pool"] == len(pool)
    settings.PRODCAT = {"NEIGHBOUR_POOL": 0}  # off: back to the bare names
    index.use_pool([])
    assert accuracy() == bare and index.stats()["pool"] == 0


# ---------------------------------------------------------------- learning from decisions


def _ready(make_product: Any, title: str, image: bytes | None, capture: Any) -> CategorySuggestion:
    with capture(execute=True):
        product = make_product(title, image=image)
    suggestion = CategorySuggestion.objects.current_for(product).get()
    assert suggestion.status == SuggestionStatus.READY, suggestion.error
    return suggestion


def test_accept_and_correction_file_the_product_with_the_stored_vector(
    model_checkpoint, categories, make_product, django_capture_on_commit_callbacks
):
    reviewer = _reviewer()
    suggestion = _ready(
        make_product, "Leather ankle boots", png_bytes("brown"), django_capture_on_commit_callbacks
    )
    assert suggestion.embedding and suggestion.embedding_id
    with django_capture_on_commit_callbacks(execute=True):
        services.accept(suggestion, user=reviewer)
    row = _product_rows().get(object_id=suggestion.object_id, active=True)
    assert row.source == NeighbourSource.ACCEPTED
    assert row.category_pk == suggestion.category_pk
    assert row.embedding_id == suggestion.embedding_id
    assert bytes(row.vector) == bytes(suggestion.embedding)  # no second forward pass

    # A correction (changing the decision) moves it, and a merchant filed it this time.
    bags = categories["Bags"]
    with django_capture_on_commit_callbacks(execute=True):
        services.reject(suggestion, user=reviewer, category=bags, override=True)
    active = _product_rows().filter(object_id=suggestion.object_id, active=True)
    assert [(r.category_pk, r.source) for r in active] == [(str(bags.pk), "merchant")]


def test_a_rolled_back_decision_files_nothing(
    model_checkpoint, categories, make_product, django_capture_on_commit_callbacks
):
    reviewer = _reviewer()
    suggestion = _ready(
        make_product, "Leather ankle boots", None, django_capture_on_commit_callbacks
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.accept(suggestion, user=reviewer)
    assert callbacks  # the index write waits for the commit
    assert not _product_rows().filter(object_id=suggestion.object_id).exists()


def test_a_category_set_by_hand_is_filed_by_the_worker(
    model_checkpoint, categories, make_product, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_product("Canvas tote bag", image=png_bytes("navy"))
    assert not _product_rows().filter(object_id=str(product.pk)).exists()
    with django_capture_on_commit_callbacks(execute=True):
        product.category = categories["Bags"]
        product.save()  # the product form: a human chose it
    row = _product_rows().get(object_id=str(product.pk), active=True)
    assert (row.category_pk, row.source) == (str(categories["Bags"].pk), "merchant")
    # Cleared by hand: it leaves the index.
    with django_capture_on_commit_callbacks(execute=True):
        product.category = None
        product.save()
    assert not _product_rows().filter(object_id=str(product.pk), active=True).exists()
    # Deleted: gone too.
    with django_capture_on_commit_callbacks(execute=True):
        product.category = categories["Bags"]
        product.save()
        product.delete()
    assert not NeighbourVector.objects.filter(active=True, source="merchant").exists()


def test_an_auto_accept_is_not_learnt_from(
    model_checkpoint, categories, make_product, settings, django_capture_on_commit_callbacks
):
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_ACCEPT": True}
    from prodcat_django.training.store import active_predictor

    real = type(active_predictor().predictor).explain_many

    def confident(self: Any, items: Any, **kw: Any) -> Any:
        return [
            dataclasses.replace(e, prediction=dataclasses.replace(e.prediction, auto_accept=True))
            for e in real(self, items, **kw)
        ]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(active_predictor().predictor), "explain_many", confident)
        suggestion = _ready_or_accepted(make_product, django_capture_on_commit_callbacks)
    assert suggestion.status == SuggestionStatus.ACCEPTED and suggestion.auto_accepted
    assert not _product_rows().filter(object_id=suggestion.object_id).exists()


def _ready_or_accepted(make_product: Any, capture: Any) -> CategorySuggestion:
    with capture(execute=True):
        product = make_product("Leather ankle boots")
    return CategorySuggestion.objects.current_for(product).get()


def test_a_flagged_suggestion_is_never_auto_accepted(
    model_checkpoint, categories, make_product, settings, django_capture_on_commit_callbacks
):
    """The service layer refuses, whatever the predictor's auto_accept says."""
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_ACCEPT": True}
    from prodcat_django.training.store import active_predictor

    real = type(active_predictor().predictor).explain_many

    def flagged(self: Any, items: Any, **kw: Any) -> Any:
        return [
            dataclasses.replace(
                e,
                prediction=dataclasses.replace(
                    e.prediction,
                    auto_accept=True,  # a predictor that forgot the rule
                    out_of_taxonomy=True,
                    ood_score=0.99,
                    ood_threshold=0.9,
                    ood_reason="far from every category",
                ),
            )
            for e in real(self, items, **kw)
        ]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(active_predictor().predictor), "explain_many", flagged)
        suggestion = _ready_or_accepted(make_product, django_capture_on_commit_callbacks)
    assert suggestion.status == SuggestionStatus.READY
    assert not suggestion.auto_accepted
    assert suggestion.out_of_taxonomy
    assert (suggestion.ood_score, suggestion.ood_threshold) == (0.99, 0.9)
    assert suggestion.ood_reason == "far from every category"
    # A person may still accept it.
    with django_capture_on_commit_callbacks(execute=True):
        services.accept(suggestion, user=_reviewer())
    assert suggestion.status == SuggestionStatus.ACCEPTED


def test_backfill_command_files_the_catalogue_and_the_names(
    model_checkpoint, categories, make_product, django_capture_on_commit_callbacks, settings
):
    from io import StringIO

    from django.core.management import call_command

    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": False}  # an imported catalogue
    filed = [make_product(f"Boot {i}", category=categories["Shoes"]) for i in range(3)]
    make_product("Uncategorized thing")
    CategoryDescription.objects.create(
        category_type=ContentType.objects.get_for_model(Category),
        category_pk=str(categories["Home Decor"].pk),
        description="Vases, cushions and candles",
    )
    out = StringIO()
    call_command("prodcat_index", "--model", "testapp.Product", "--sync", stdout=out)
    assert (
        f"Filed 3 of 3 categorized testapp.Product products and {len(categories)} category"
        in out.getvalue()
    )
    rows = NeighbourVector.objects.filter(active=True)
    assert {r.object_id for r in rows.filter(source="catalogue")} == {str(p.pk) for p in filed}
    assert rows.filter(source="name").count() == len(categories)
    described = rows.get(source="name", object_id=str(categories["Home Decor"].pk))
    assert described.fingerprint == neighbours._text_hash("Home Decor. Vases, cushions and candles")
    out = StringIO()
    call_command(
        "prodcat_index", "--model", "testapp.Product", "--sync", "--only-missing", stdout=out
    )
    assert "Filed 0 of 0" in out.getvalue()


# --------------------------------------------------------------------------- day one, shipped model


@pytest.fixture
def shipped_model(settings: Any) -> Any:
    """The shipped fashion16 model (real encoders) as the active model for one test."""
    from prodcat_django.classifier import clear_cache
    from prodcat_django.ml.manifest import default_checkpoint_dir

    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(default_checkpoint_dir())}
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def fashion_shop(db: None) -> dict[str, Category]:
    """A shop with the shipped model's sixteen categories, and one of its own: Mugs."""
    from prodcat_django.ml.manifest import default_checkpoint_dir, read_checkpoint

    names = [*read_checkpoint(default_checkpoint_dir()).labels, "Mugs"]
    return {name: Category.objects.create(name=name, slug=slugify(name)) for name in names}


@pytest.mark.slow
def test_three_mugs_filed_under_a_new_category_make_the_fourth_a_mug(
    shipped_model, fashion_shop, make_product, django_capture_on_commit_callbacks
):
    reviewer = _reviewer()
    mugs = fashion_shop["Mugs"]
    for i, title in enumerate(MUG_TITLES[:3]):
        suggestion = _ready(make_product, title, mug_png(i), django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            services.reject(suggestion, user=reviewer, category=mugs)
    assert NeighbourVector.objects.filter(category_pk=str(mugs.pk), source="merchant").count() == 3

    fourth = _ready(make_product, MUG_TITLES[3], mug_png(3), django_capture_on_commit_callbacks)
    assert fourth.category_pk == str(mugs.pk), fourth.labels
    assert fourth.label == "Mugs"
    assert fourth.labels[0]["source"] == "neighbours"
    assert not fourth.out_of_taxonomy  # it fits one of the shop's categories: Mugs
    assert fourth.score > 0.5


@pytest.mark.slow
def test_a_category_without_products_is_suggested_from_its_name_for_a_flagged_product(
    shipped_model, fashion_shop, make_product, django_capture_on_commit_callbacks
):
    """Before any mug is filed, "Mugs" comes from its name, for a product the shipped model's
    detector flags as fitting none of its categories; for one it does not flag, a name alone
    does not compete."""
    fashion = _ready(
        make_product, "Roxy Women Mustard Yellow Top", None, django_capture_on_commit_callbacks
    )
    assert not fashion.out_of_taxonomy
    assert "Mugs" not in {label["label"] for label in fashion.labels}

    suggestion = _ready(
        make_product,
        "Ceramic coffee mug, 300 ml",
        mug_png(8),
        django_capture_on_commit_callbacks,
    )
    assert suggestion.labels[0]["label"] == "Mugs", suggestion.labels
    assert suggestion.labels[0]["source"] == "name"
    assert not suggestion.out_of_taxonomy  # it fits the shop's own Mugs


def test_a_long_embedding_id_is_stored_as_its_hash():
    """The columns hold 100 characters (PostgreSQL enforces it); the pooled space's id of the
    shipped encoders is longer."""
    from types import SimpleNamespace

    long_id = "pooled-v1:" + "x" * 150
    key = neighbours.embedding_key(SimpleNamespace(embedding_id=long_id))
    assert key.startswith("sha256:") and len(key) <= 100
    assert key == neighbours.embedding_key(SimpleNamespace(embedding_id=long_id))
    assert neighbours.embedding_key(SimpleNamespace(embedding_id="short")) == "short"
