"""One bad product fails only itself, the worker holds one batch of photos at a time, and no
exception leaves a row ``running``."""

from __future__ import annotations

import pytest

from prodcat_django import services
from prodcat_django.classifier import get_predictor
from prodcat_django.fingerprint import product_fingerprint
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from prodcat_django.registry import get_adapter
from tests.shop_data import png_bytes
from tests.testapp.models import Product

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_checkpoint")]


def _current(product):
    return CategorySuggestion.objects.current_for(product).get()


def _none_running():
    return not CategorySuggestion.objects.filter(status=SuggestionStatus.RUNNING).exists()


def test_a_product_the_model_chokes_on_fails_alone_with_the_models_error(
    make_product, categories, monkeypatch
):
    products = [make_product(title=f"Boots {i}", image=png_bytes()) for i in range(3)]
    poison = make_product(title="POISON tote", image=png_bytes("blue"))
    predictor = get_predictor()
    real = predictor.explain_many

    def explain_many(items, **kwargs):
        if any("POISON" in item.title for item in items):
            raise RuntimeError("CUDA error: an illegal memory access in /opt/torch/lib/x.so")
        return real(items, **kwargs)

    monkeypatch.setattr(predictor, "explain_many", explain_many)
    ids = [_current(p).pk for p in (*products, poison)]
    report = services.run_suggestions(ids)

    assert report.failed == [ids[-1]]
    assert sorted(report.ready) == sorted(ids[:-1])
    failed = _current(poison)
    assert failed.status == SuggestionStatus.FAILED
    assert failed.error.startswith("the model failed: RuntimeError: CUDA error")
    assert "/opt/torch" not in failed.error and "x.so" in failed.error  # no server paths
    assert _none_running()


def test_an_exception_reading_one_product_fails_only_that_row(
    make_product, categories, monkeypatch
):
    good = make_product(title="Boots", image=png_bytes())
    bad = make_product(title="Broken", image=png_bytes())
    adapter_class = type(get_adapter(Product))
    real = adapter_class.get_text

    def get_text(adapter, product):
        if product.pk == bad.pk:
            raise KeyError("title")
        return real(adapter, product)

    monkeypatch.setattr(adapter_class, "get_text", get_text)
    report = services.run_suggestions([_current(good).pk, _current(bad).pk])
    assert report.ready == [_current(good).pk]
    assert report.failed == [_current(bad).pk]
    assert _current(bad).error == "reading the product failed: KeyError: 'title'"
    assert _none_running()


def test_photos_are_decoded_one_batch_at_a_time(make_product, categories, monkeypatch, settings):
    settings.PRODCAT = {**settings.PRODCAT, "TASK_BATCH_SIZE": 4}
    products = [make_product(title=f"Mug {i}", image=png_bytes()) for i in range(10)]
    events: list[str] = []
    import prodcat_django.ml.images as images

    real_load = images.load_image

    def load_image(data, **kwargs):
        events.append("decode")
        assert kwargs["reduce_to"] == images.DECODE_SIZE
        return real_load(data, **kwargs)

    predictor = get_predictor()
    real_explain = predictor.explain_many

    def explain_many(items, **kwargs):
        events.append(f"forward:{len(items)}")
        return real_explain(items, **kwargs)

    monkeypatch.setattr(images, "load_image", load_image)
    monkeypatch.setattr(predictor, "explain_many", explain_many)
    report = services.run_suggestions([_current(p).pk for p in products])
    assert len(report.ready) == 10
    assert events == [
        *["decode"] * 4,
        "forward:4",
        *["decode"] * 4,
        "forward:4",
        *["decode"] * 2,
        "forward:2",
    ]


def test_a_photo_file_over_the_size_limit_is_not_read_and_the_title_is_used(
    make_product, categories, settings
):
    settings.PRODCAT = {**settings.PRODCAT, "MAX_IMAGE_FILE_BYTES": 100}
    product = make_product(title="Leather boots", image=png_bytes(size=(200, 200)))
    suggestion = _current(product)
    assert services.run_suggestions([suggestion.pk]).ready == [suggestion.pk]
    suggestion.refresh_from_db()
    assert suggestion.error.startswith("photo not used (the photo file is ")
    assert "the limit is 100" in suggestion.error
    # Fingerprinted from the whole file, as the save signal does: no spurious redo.
    assert suggestion.fingerprint == product_fingerprint(product)


def test_a_missing_file_error_names_the_file_not_the_server_path(
    make_product, categories, media_root
):
    product = make_product(title="Boots", image=png_bytes())
    product.image.storage.delete(product.image.name)
    fresh = _current(product)
    services.run_suggestions([fresh.pk])  # inputs changed: a fresh row is queued
    fresh = _current(product)
    services.run_suggestions([fresh.pk])
    fresh.refresh_from_db()
    assert fresh.status == SuggestionStatus.FAILED
    assert product.image.name in fresh.error
    assert str(media_root) not in fresh.error and "/" + product.image.name not in fresh.error


def test_a_model_that_cannot_load_puts_every_row_back_to_pending(
    make_product, categories, monkeypatch
):
    import prodcat_django.classifier as classifier

    products = [make_product(title=f"Boots {i}") for i in range(6)]

    def broken(*args, **kwargs):
        raise OSError("weights missing")

    monkeypatch.setattr(classifier, "get_predictor", broken)
    from prodcat_django.services.runs import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="weights missing"):
        services.run_suggestions([_current(p).pk for p in products])
    assert {_current(p).status for p in products} == {SuggestionStatus.PENDING}
