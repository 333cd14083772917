"""The model store: versions in a storage, verified local copies, atomic activation, rollback,
the worker switching models without a restart, and pruning old files."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from prodcat_django import classifier, services
from prodcat_django.ml.testing import build_random_checkpoint
from prodcat_django.models import (
    CategorySuggestion,
    LabelMapping,
    ModelVersion,
    ModelVersionStatus,
    SuggestionStatus,
)
from prodcat_django.training import store
from prodcat_django.training.labels import label_map_for
from tests.shop_data import png_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_checkpoint")]


def shop_version(tmp_path: Path, categories: dict, version: str = "1", seed: int = 0):
    """A stored version whose labels are the shop's category pks."""
    cats = sorted(categories.values(), key=lambda c: str(c.pk))
    path = build_random_checkpoint(
        tmp_path / f"ckpt-{version}",
        [str(c.pk) for c in cats],
        name="shop",
        version=version,
        seed=seed,
    )
    return store.add_version(path, label_map=label_map_for(cats), product_model="testapp.Product")


def test_add_version_copies_files_and_downloads_a_verified_local_copy(tmp_path, categories):
    row = shop_version(tmp_path, categories)
    assert row.status == ModelVersionStatus.CANDIDATE
    assert set(row.files) >= {"manifest.json", "config.json", "labels.json", "weights.safetensors"}
    assert all(store.model_storage().exists(f"{row.storage_prefix}/{name}") for name in row.files)
    local = store.local_checkpoint(row)
    assert local.is_relative_to(store.local_cache_dir())
    assert (local / "weights.safetensors").read_bytes() == (
        tmp_path / "ckpt-1" / "shop" / "1" / "weights.safetensors"
    ).read_bytes()
    # Importing the same checkpoint again is a no-op; another one under that name is refused.
    assert store.add_version(tmp_path / "ckpt-1" / "shop" / "1").pk == row.pk
    with pytest.raises(store.StoreError, match="already stored as shop 1"):
        shop_version(tmp_path / "other", categories, seed=3)


def test_a_tampered_stored_file_is_refused(tmp_path, categories):
    row = shop_version(tmp_path, categories)
    storage = store.model_storage()
    key = f"{row.storage_prefix}/weights.safetensors"
    data = bytearray(storage.open(key).read())
    data[-1] ^= 0xFF
    storage.delete(key)
    storage.save(key, ContentFile(bytes(data)))
    with pytest.raises(store.StoreError, match=r"sha256 .* the version row records"):
        store.local_checkpoint(row)
    with pytest.raises(store.StoreError):
        store.activate(row)  # never activated, and nothing changed
    assert store.active_version() is None


def test_a_tampered_local_copy_is_fetched_again(tmp_path, categories):
    row = shop_version(tmp_path, categories)
    local = store.local_checkpoint(row)
    (local / "labels.json").write_text("[]")
    store.forget_local_copies()
    again = store.local_checkpoint(row)
    assert (again / "labels.json").read_text() != "[]"


def test_one_active_version_rollback_and_builtin(tmp_path, categories):
    one, two = shop_version(tmp_path, categories, "1"), shop_version(tmp_path, categories, "2")
    store.activate(one)
    store.activate(two)
    statuses = dict(ModelVersion.objects.values_list("version", "status"))
    assert statuses["1"] == ModelVersionStatus.RETIRED
    assert statuses["2"] == ModelVersionStatus.ACTIVE
    assert ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).count() == 1
    assert store.rollback().version == "1"
    assert store.active_version().version == "1"
    builtin = store.activate(store.find_version("builtin"))
    assert builtin.builtin and builtin.name == "tiny"
    assert store.active_predictor().predictor.info.name == "tiny"


def test_worker_switches_to_the_active_version_before_each_task(
    tmp_path, categories, make_product, reviewer
):
    waiting = make_product(title="Leather boots", image=png_bytes())
    decided = make_product(title="Steel watch", image=png_bytes("black"))
    services.run_suggestions([s.pk for s in CategorySuggestion.objects.current()])
    decided_row = CategorySuggestion.objects.current_for(decided).get()
    services.reject(decided_row, user=reviewer, category=categories["Watches"])
    assert CategorySuggestion.objects.current_for(waiting).get().model_name == "tiny"

    row = shop_version(tmp_path, categories)
    store.activate(row, rerun=False)
    product = make_product(title="Canvas tote", image=png_bytes("blue"))
    services.run_suggestions([CategorySuggestion.objects.current_for(product).get().pk])
    suggestion = CategorySuggestion.objects.current_for(product).get()
    assert (suggestion.model_name, suggestion.model_version) == ("shop", "1")
    # The label is a category pk underneath; the row shows the name and the matched category.
    assert suggestion.label in categories
    assert suggestion.category_pk == str(categories[suggestion.label].pk)
    assert [key[0] for key in classifier._predictors] == [str(store.local_checkpoint(row))]


def test_activation_reruns_undecided_suggestions_and_never_decided_ones(
    tmp_path, categories, make_product, reviewer, django_capture_on_commit_callbacks
):
    waiting = make_product(title="Leather boots", image=png_bytes())
    decided = make_product(title="Steel watch", image=png_bytes("black"))
    services.run_suggestions([s.pk for s in CategorySuggestion.objects.current()])
    decided_row = CategorySuggestion.objects.current_for(decided).get()
    services.reject(decided_row, user=reviewer, category=categories["Watches"])
    row = shop_version(tmp_path, categories)
    with django_capture_on_commit_callbacks(execute=True):
        store.activate(row)
    rerun = CategorySuggestion.objects.current_for(waiting).get()
    assert rerun.status == SuggestionStatus.READY  # eager Celery ran it
    assert rerun.model_name == "shop"
    untouched = CategorySuggestion.objects.current_for(decided).get()
    assert untouched.pk == decided_row.pk
    assert untouched.status == SuggestionStatus.REJECTED
    assert untouched.model_name == "tiny"


def test_builtin_label_mapping_survives_a_rename(categories, make_product):
    product = make_product(title="Leather boots", image=png_bytes())
    services.run_suggestions([CategorySuggestion.objects.current_for(product).get().pk])
    first = CategorySuggestion.objects.current_for(product).get()
    category = categories[first.label]
    assert LabelMapping.objects.get(model_name="tiny", label=first.label).category_pk == str(
        category.pk
    )
    category.name, category.slug = "Renamed by the merchant", "renamed"
    category.save()
    services.request_suggestion(product, force=True)
    services.run_suggestions([CategorySuggestion.objects.current_for(product).get().pk])
    second = CategorySuggestion.objects.current_for(product).get()
    assert second.label == first.label
    assert second.category_pk == str(category.pk)


def test_keep_versions_deletes_old_files_but_not_the_active_ones(tmp_path, categories, settings):
    settings.PRODCAT = {**settings.PRODCAT, "KEEP_VERSIONS": 2}
    rows = [shop_version(tmp_path, categories, str(n)) for n in range(1, 5)]
    store.activate(rows[0])
    pruned = store.prune_files()
    assert [r.version for r in pruned] == ["2"]
    rows[1].refresh_from_db()
    assert rows[1].files_deleted
    assert not store.model_storage().exists(f"{rows[1].storage_prefix}/weights.safetensors")
    with pytest.raises(store.StoreError, match="files were deleted"):
        store.local_checkpoint(rows[1])
    store.local_checkpoint(rows[0])  # active: kept


def test_prodcat_models_command(tmp_path, categories, capsys):
    path = build_random_checkpoint(
        tmp_path,
        [str(c.pk) for c in categories.values()] + ["Nowhere"],
        name="elsewhere",
        version="7",
    )
    call_command("prodcat_models", "import", str(path), "--model", "testapp.Product")
    out = capsys.readouterr().out
    assert "Imported elsewhere 7 as a candidate" in out
    assert "1 label(s) match no category of testapp.Product: Nowhere" in out
    call_command("prodcat_models", "activate", "elsewhere:7")
    call_command("prodcat_models", "list")
    listing = capsys.readouterr().out
    assert "elsewhere:7" in listing and "active" in listing
    assert "tiny:0.0.1" in listing and "built-in" in listing
    call_command("prodcat_models", "rollback")
    assert "tiny 0.0.1 is active" in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no model version"):
        call_command("prodcat_models", "activate", "nope")


def test_system_check_reports_unpredictable_categories_and_unmatched_labels(
    tmp_path, categories, make_product
):
    from django.core import checks

    from prodcat_django.checks import check_label_coverage
    from tests.testapp.models import Category

    garden = Category.objects.create(name="Garden", slug="garden")
    make_product(title="rake", category=garden)
    make_product(title="boots", category=categories["Shoes"])
    categories["Bags"].delete()  # the built-in label "Bags" now reaches nothing
    found = {m.id: m.msg for m in check_label_coverage(databases=["default"])}
    assert "Bags" in found["prodcat.W009"]
    assert "Garden" in found["prodcat.W010"] and "Shoes" not in found["prodcat.W010"]
    assert all(isinstance(m, checks.Warning) for m in check_label_coverage(databases=["default"]))
    assert check_label_coverage() == []  # only with manage.py check --database default
    # A shop-trained version predicting every filed category: nothing to report.
    row = shop_version(tmp_path, {"Garden": garden, "Shoes": categories["Shoes"]})
    store.activate(row, rerun=False)
    assert check_label_coverage(databases=["default"]) == []
