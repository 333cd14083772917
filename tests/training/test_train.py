"""Datasets from the shop, prodcat_train (tiny encoders), the promotion gate, the export, the
lock and the retrain schedule."""

from __future__ import annotations

import csv
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from prodcat_django import services
from prodcat_django.models import (
    CategorySuggestion,
    ModelVersion,
    ModelVersionStatus,
    TrainingLock,
)
from prodcat_django.registry import get_adapter
from prodcat_django.training import schedule, store
from prodcat_django.training.dataset import DatasetError, build_dataset
from prodcat_django.training.trainer import train_new_version
from tests.testapp.models import Product

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_checkpoint")]


def spec():
    return get_adapter(Product)


def train(**kwargs):
    lines: list[str] = []
    outcome = train_new_version(spec(), encoders="tiny-random", say=lines.append, **kwargs)
    return outcome, lines


def test_dataset_groups_rules_and_left_out_categories(
    fill_shop, categories, make_product, reviewer
):
    products = fill_shop(per_category=8)
    # Same title, and identical photo bytes: each pair lies on one side of the split.
    twin_a = make_product(title="twin boots", category=categories["Shoes"])
    twin_b = make_product(title="Twin   BOOTS", category=categories["Shoes"])
    from tests.training.conftest import photo

    same_photo = [
        make_product(title=f"photo twin {i}", image=photo("red", 1), category=categories["Bags"])
        for i in range(2)
    ]
    # A category with too few products is left out and listed.
    from tests.testapp.models import Category

    rare = Category.objects.create(name="Garden", slug="garden")
    make_product(title="rake", category=rare)
    # A product whose category a merchant rejected is not a positive for it.
    rejected = products[0]
    suggestion = CategorySuggestion.objects.current_for(rejected).get()
    CategorySuggestion.objects.filter(pk=suggestion.pk).update(
        status="ready", label="Shoes", category_pk=str(categories["Shoes"].pk)
    )
    services.reject(CategorySuggestion.objects.get(pk=suggestion.pk), user=reviewer)

    dataset = build_dataset(spec(), min_per_category=5)
    by_pk = {e.product_pk: e for e in dataset.examples}
    assert str(rejected.pk) not in by_pk
    assert dataset.excluded["filed under a category a merchant rejected for them"] == 1
    assert by_pk[str(twin_a.pk)].split == by_pk[str(twin_b.pk)].split
    assert by_pk[str(same_photo[0].pk)].split == by_pk[str(same_photo[1].pk)].split
    assert [item["name"] for item in dataset.left_out] == ["Garden"]
    assert {str(c.pk) for c in dataset.categories} == {str(c.pk) for c in categories.values()}
    assert all(row["train"] > 0 for row in dataset.counts().values())
    assert dataset.fingerprint() == build_dataset(spec(), min_per_category=5).fingerprint()
    text = "\n".join(dataset.describe())
    assert "Garden [" in text and "left out, fewer than 5" in text


def test_clear_errors_for_too_few_products_and_a_single_category(categories, make_product):
    for i in range(3):
        make_product(title=f"boots {i}", category=categories["Shoes"])
    with pytest.raises(DatasetError, match=r"only 3 usable labelled products.*at least 10"):
        build_dataset(spec())
    for i in range(10):
        make_product(title=f"boots more {i}", category=categories["Shoes"])
    make_product(title="one watch", category=categories["Watches"])
    with pytest.raises(DatasetError, match=r"only 1 category .*\(Shoes\)"):
        build_dataset(spec())
    with pytest.raises(CommandError, match="only 1 category"):
        call_command("prodcat_train", "--model", "testapp.Product", "--dry-run")


def test_dry_run_prints_the_dataset(fill_shop, capsys):
    fill_shop(per_category=6)
    call_command("prodcat_train", "--model", "testapp.Product", "--dry-run")
    out = capsys.readouterr().out
    assert "24 products in 4 categories of testapp.Product" in out
    assert "Home Decor [" in out
    assert "dataset fingerprint sha256:" in out
    assert not ModelVersion.objects.filter(builtin=False).exists()


def test_prodcat_train_stores_gates_and_activates_a_new_version(fill_shop, capsys):
    fill_shop(per_category=12)
    call_command("prodcat_train", "--model", "testapp.Product", "--encoders", "tiny-random")
    out = capsys.readouterr().out
    row = ModelVersion.objects.get(builtin=False)
    assert (row.name, row.version, row.status) == ("shop-testapp-product", "1", "active")
    assert "gate: passed" in out and "is now active" in out
    assert set(row.label_map) == {
        str(pk) for pk in Product.objects.values_list("category", flat=True)
    }
    assert row.metrics["test"]["full"]["n"] == row.comparison["candidate"]["n"] > 0
    assert row.comparison["baseline"]["name"] == "tiny"
    assert row.dataset_size == 48 and row.dataset_fingerprint.startswith("sha256:")
    # The trained model learned the shop: better than the random built-in model.
    assert row.comparison["candidate"]["accuracy"] > row.comparison["baseline"]["accuracy"]
    assert row.comparison["candidate"]["accuracy"] >= 0.5  # 4 categories: chance is 0.25


def test_retrain_reuses_cached_features_and_the_gate_keeps_a_worse_version_a_candidate(
    fill_shop, categories
):
    products = fill_shop(per_category=12)
    first, _ = train()
    assert first.activated
    # Scramble the training products' categories (held-out ones untouched): the new version is
    # worse on the same held-out products, so it stays a candidate, with the comparison shown.
    dataset = build_dataset(spec())
    held_out = {e.product_pk for e in dataset.split("test")}
    names = list(categories)
    for i, product in enumerate(p for p in products if str(p.pk) not in held_out):
        Product.objects.filter(pk=product.pk).update(category=categories[names[i % 4]])
    third, lines = train()
    assert not third.activated
    assert third.version.status == ModelVersionStatus.CANDIDATE
    assert "gate: not passed: accuracy" in "\n".join(lines)
    assert third.seconds["encode"] <= first.seconds["encode"]  # titles, images: all cached
    assert store.active_version().pk == first.version.pk
    forced, _ = train(force=True)
    assert forced.activated and store.active_version().pk == forced.version.pk


def test_a_shop_trained_version_carries_its_out_of_taxonomy_detector(fill_shop):
    import json

    from prodcat_django.ml.predictor import Predictor

    fill_shop(per_category=12)
    outcome, _ = train()
    path = store.local_checkpoint(outcome.version)
    manifest = json.loads((path / "manifest.json").read_text())
    verdict = manifest["out_of_taxonomy"]
    assert verdict["threshold"] > 0 and verdict["val_flagged_rate"] <= 0.05 + 1e-9
    # The hashed files include the detector, and the predictor loads it.
    assert any(name.startswith("ood") for name in manifest["files"])
    assert Predictor.load(path, device="cpu").ood is not None


def test_title_only_when_no_product_has_an_image(fill_shop):
    fill_shop(per_category=10, images=False)
    outcome, lines = train()
    assert outcome.title_only
    assert any("training a title-only model" in line for line in lines)
    assert outcome.version.note.startswith("title-only")


def test_export_dataset_writes_the_classifier_csv_format(fill_shop, tmp_path, capsys):
    fill_shop(per_category=6)
    out = tmp_path / "export"
    call_command("prodcat_export_dataset", str(out), "--model", "testapp.Product")
    rows = []
    for split in ("train", "val", "test"):
        with (out / f"{split}.csv").open() as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames[:4] == ["id", "title", "label", "image"]
            rows.extend(reader)
    assert len(rows) == 24
    assert all((out / row["image"]).is_file() for row in rows)
    assert (out / "categories.json").is_file() and (out / "decisions.csv").is_file()
    from prodcat_django.ml.data import read_products

    # The classifier's own reader takes it as it is.
    assert [p.id for p in read_products(out / "train.csv")] == [
        r["id"] for r in rows[: len(read_products(out / "train.csv"))]
    ]
    with pytest.raises(CommandError, match="not empty"):
        call_command("prodcat_export_dataset", str(out), "--model", "testapp.Product")


def test_training_lock_is_exclusive_and_an_expired_one_is_taken_over():
    with (
        schedule.training_lock(),
        pytest.raises(schedule.TrainingLocked, match="already running"),
        schedule.training_lock(),
    ):
        pass
    assert not TrainingLock.objects.exists()
    TrainingLock.objects.create(
        name=schedule.LOCK_NAME,
        holder="dead-host:1",
        acquired_at=timezone.now() - timedelta(days=1),
        expires_at=timezone.now() - timedelta(hours=1),
    )
    with schedule.training_lock() as holder:
        assert TrainingLock.objects.get().holder == holder


def test_retrain_task_trains_only_when_due(fill_shop, settings, capsys):
    from prodcat_django.tasks import retrain_task

    settings.PRODCAT = {**settings.PRODCAT, "RETRAIN_MIN_NEW": 1000}
    fill_shop(per_category=10)
    result = retrain_task.apply(kwargs={"model": "testapp.Product"}).get()
    assert result == {
        "trained": False,
        "reason": "retrain not due: 0 new decision(s), 40 newly categorized product(s) since "
        "the active version (needs 1000)",
    }
    settings.PRODCAT = {**settings.PRODCAT, "RETRAIN_MIN_NEW": 40}
    due = schedule.retrain_due(spec())
    assert due.due and due.new_products == 40
    with schedule.training_lock():
        locked = schedule.retrain("testapp.Product")
    assert not locked["trained"] and "already running" in locked["reason"]
