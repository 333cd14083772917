"""run_suggestions, the worker's job, on the tiny random-weight model."""

import pytest

from prodcat_django import services
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.conftest import TEST_LABELS
from tests.shop_data import png_bytes
from tests.testapp.models import Product, VendorItem

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_checkpoint")]


def _current(product):
    return CategorySuggestion.objects.current_for(product).get()


def test_ready_suggestion_with_top_k_labels_and_matched_category(make_product, categories):
    product = make_product(title="Leather ankle boots", image=png_bytes())
    suggestion = _current(product)
    report = services.run_suggestions([suggestion.pk])
    assert report.ready == [suggestion.pk]
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.READY
    assert len(suggestion.labels) == 3
    scores = [item["score"] for item in suggestion.labels]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert {item["label"] for item in suggestion.labels} <= set(TEST_LABELS)
    assert suggestion.label == suggestion.labels[0]["label"]
    assert suggestion.score == pytest.approx(scores[0])
    assert suggestion.category_pk == str(categories[suggestion.label].pk)
    assert (suggestion.model_name, suggestion.model_version) == ("tiny", "0.0.1")
    assert suggestion.attempts == 1
    product.refresh_from_db()
    assert product.category is None  # a suggestion, not a decision


def test_eager_pipeline_from_save_to_ready(
    make_product, categories, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_product(title="Wrist watch", image=png_bytes("black"))
    suggestion = _current(product)
    assert suggestion.status == SuggestionStatus.READY
    assert suggestion.dispatched_at is not None


def test_unmatched_label_leaves_category_blank(make_product):
    product = make_product(title="Boots")  # no Category rows exist
    services.run_suggestions([_current(product).pk])
    suggestion = _current(product)
    assert suggestion.status == SuggestionStatus.READY
    assert suggestion.category_pk == ""


def test_title_only_and_uuid_products(categories):
    item = VendorItem.objects.create(name="Steel diver watch")
    suggestion = item.prodcat_suggestion
    assert services.run_suggestions([suggestion.pk]).ready == [suggestion.pk]


def test_a_bad_image_fails_only_its_row(make_product, categories):
    good = make_product(title="Boots", image=png_bytes())
    bad = make_product(title="Bag", image=b"this is not an image")
    huge = make_product(title="Poster", image=png_bytes(size=(300, 300)))
    ids = [_current(p).pk for p in (good, bad, huge)]
    report = services.run_suggestions(ids)
    assert sorted(report.ready) == [ids[0], ids[2]]
    assert report.failed == [ids[1]]
    failed = _current(bad)
    assert failed.status == SuggestionStatus.FAILED
    assert failed.error.startswith("unreadable image:")
    assert failed.labels == []


def test_a_missing_image_file_redoes_the_row_then_fails_it(make_product, categories):
    product = make_product(title="Boots", image=png_bytes())
    queued = _current(product)
    product.image.storage.delete(product.image.name)
    # Fingerprinted as "no image" now: the inputs changed, so a fresh row is queued...
    assert services.run_suggestions([queued.pk]).obsolete == [queued.pk]
    fresh = _current(product)
    assert fresh.pk != queued.pk
    # ...and that one fails, since the file it should read is not there.
    assert services.run_suggestions([fresh.pk]).failed == [fresh.pk]
    fresh.refresh_from_db()
    assert fresh.status == SuggestionStatus.FAILED
    assert fresh.error.startswith("unreadable image:")


def test_too_many_pixels_uses_the_title_alone_and_says_so(make_product, settings):
    settings.PRODCAT = {**settings.PRODCAT, "MAX_IMAGE_PIXELS": 1000}
    product = make_product(title="Poster", image=png_bytes(size=(100, 100)))
    services.run_suggestions([_current(product).pk])
    ready = _current(product)
    assert ready.status == SuggestionStatus.READY
    assert ready.error.startswith("photo not used (") and "pixels" in ready.error
    assert ready.error.endswith("suggested from the title alone")
    assert ready.explanation["modality_weight"]["image"] == 0


def test_too_many_pixels_without_a_title_fails_with_a_readable_error(make_product, settings):
    settings.PRODCAT = {**settings.PRODCAT, "MAX_IMAGE_PIXELS": 1000}
    product = make_product(title="", image=png_bytes(size=(100, 100)))
    services.run_suggestions([_current(product).pk])
    failed = _current(product)
    assert failed.status == SuggestionStatus.FAILED
    assert "pixels" in failed.error and "no title" in failed.error


def test_no_title_and_no_image_fails(make_product):
    product = make_product(title="   ")
    services.run_suggestions([_current(product).pk])
    assert _current(product).error == "the product has neither a title nor an image"


def test_deleted_product_makes_the_row_obsolete(make_product):
    product = make_product(title="Boots")
    suggestion = _current(product)
    Product.objects.filter(pk=product.pk)._raw_delete(Product.objects.db)  # no signal
    report = services.run_suggestions([suggestion.pk])
    assert report.obsolete == [suggestion.pk]
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.OBSOLETE
    assert suggestion.error == "the product was deleted"


def test_superseded_row_is_dropped(make_product, commit_so_far):
    product = make_product(title="Boots")
    old = _current(product)
    commit_so_far()
    product.title = "Rain boots"
    product.save()
    assert CategorySuggestion.objects.get(pk=old.pk).status == SuggestionStatus.OBSOLETE
    report = services.run_suggestions([old.pk])
    assert report.skipped == [old.pk]  # a late delivery of its task does nothing
    old.refresh_from_db()
    assert (old.status, old.labels) == (SuggestionStatus.OBSOLETE, [])


def test_inputs_changed_behind_the_signal_get_a_fresh_suggestion(make_product):
    product = make_product(title="Boots")
    stale = _current(product)
    Product.objects.filter(pk=product.pk).update(title="Handbag")  # bypasses post_save
    report = services.run_suggestions([stale.pk])
    assert report.obsolete == [stale.pk]
    stale.refresh_from_db()
    assert (stale.status, stale.is_current, stale.error) == (
        "obsolete",
        False,
        "the product changed",
    )
    fresh = _current(product)
    assert fresh.pk != stale.pk
    assert fresh.status == SuggestionStatus.PENDING


def test_rerun_is_idempotent(make_product, categories):
    product = make_product(title="Boots")
    suggestion = _current(product)
    services.run_suggestions([suggestion.pk])
    first = CategorySuggestion.objects.get(pk=suggestion.pk)
    report = services.run_suggestions([suggestion.pk, 999_999])
    assert sorted(report.skipped) == [suggestion.pk, 999_999]
    again = CategorySuggestion.objects.get(pk=suggestion.pk)
    assert (again.updated_at, again.attempts, again.labels) == (
        first.updated_at,
        first.attempts,
        first.labels,
    )


def test_a_decided_row_is_never_rewritten(make_product, reviewer, categories):
    product = make_product(title="Boots")
    suggestion = _current(product)
    services.run_suggestions([suggestion.pk])
    services.accept(_current(product), user=reviewer)
    report = services.run_suggestions([suggestion.pk])
    assert report.skipped == [suggestion.pk]
    assert _current(product).status == SuggestionStatus.ACCEPTED


def test_a_running_row_left_by_a_dead_worker_is_rerun(make_product):
    product = make_product(title="Boots")
    suggestion = _current(product)
    CategorySuggestion.objects.filter(pk=suggestion.pk).update(status="running", attempts=1)
    report = services.run_suggestions([suggestion.pk])
    assert report.ready == [suggestion.pk]
    assert _current(product).attempts == 2


def test_batched_inference_over_many_products(make_product, categories, settings):
    settings.PRODCAT = {**settings.PRODCAT, "TASK_BATCH_SIZE": 3}
    products = [
        make_product(title=f"Product {n}", image=png_bytes() if n % 2 else None) for n in range(7)
    ]
    ids = [_current(p).pk for p in products]
    report = services.run_suggestions(ids)
    assert sorted(report.ready) == sorted(ids)


def test_each_forward_pass_is_stored_before_the_next(make_product, settings, monkeypatch):
    """The progress page moves per pass: when the second pass starts, the first one's rows
    are ready in the database already."""
    from prodcat_django.classifier import get_predictor

    settings.PRODCAT = {**settings.PRODCAT, "TASK_BATCH_SIZE": 2}
    ids = [_current(make_product(title=f"Product {n}")).pk for n in range(5)]
    CategorySuggestion.objects.filter(pk__in=ids).update(status=SuggestionStatus.PENDING)
    predictor = get_predictor()
    original = predictor.explain_many
    ready_before_each_pass = []

    def counting(items, **kwargs):
        ready_before_each_pass.append(
            CategorySuggestion.objects.filter(pk__in=ids, status=SuggestionStatus.READY).count()
        )
        return original(items, **kwargs)

    monkeypatch.setattr(predictor, "explain_many", counting)
    report = services.run_suggestions(ids)
    assert sorted(report.ready) == ids
    assert ready_before_each_pass == [0, 2, 4]


def test_the_task_wraps_the_service(make_product):
    from prodcat_django.tasks import run_suggestions_task

    product = make_product(title="Boots")
    suggestion = _current(product)
    result = run_suggestions_task.apply(args=[[suggestion.pk]]).get()
    assert result["ready"] == [suggestion.pk]
    assert run_suggestions_task.name == "prodcat.run_suggestions"
    assert run_suggestions_task.acks_late is True


def test_a_broken_model_setup_claims_nothing_and_says_why(
    make_product, settings, tmp_path, model_checkpoint
):
    from prodcat_django.models import WorkerHealth

    product = make_product(title="Boots")
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(tmp_path / "missing")}
    with pytest.raises(services.ModelUnavailable, match="no such checkpoint folder"):
        services.run_suggestions([_current(product).pk], worker="w1")
    suggestion = _current(product)
    assert (suggestion.status, suggestion.attempts) == (SuggestionStatus.PENDING, 0)
    health = WorkerHealth.objects.get(hostname="w1")
    assert not health.model_loaded and "no such checkpoint folder" in health.error
    assert list(services.workers_without_model()) == [health]
    # Fixed: the next delivery loads the model, and the health record says so.
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(model_checkpoint)}
    assert services.run_suggestions([suggestion.pk], worker="w1").ready == [suggestion.pk]
    health.refresh_from_db()
    assert health.model_loaded and health.error == ""


def test_a_row_gives_up_after_max_attempts(make_product):
    product = make_product(title="Boots")
    suggestion = _current(product)
    CategorySuggestion.objects.filter(pk=suggestion.pk).update(
        status="pending", attempts=services.MAX_ATTEMPTS
    )
    report = services.run_suggestions([suggestion.pk])
    assert report.failed == [suggestion.pk]
    assert _current(product).error == f"gave up after {services.MAX_ATTEMPTS} attempts"
