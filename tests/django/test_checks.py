"""Each system check id fires on a crafted misconfiguration, and stays quiet when all is well."""

import shutil

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from prodcat_django import checks, registry
from prodcat_django.adapters import FieldAdapter, ProductAdapter
from tests.testapp.models import Category, Product, ProductSuggestion, VendorItem


def _ids(messages):
    return [m.id for m in messages]


@pytest.fixture
def only_spec(monkeypatch):
    """Replace the registry's content for one test with the given adapters."""

    def use(*adapters):
        monkeypatch.setattr(registry, "_registry", {a.model: a for a in adapters})
        monkeypatch.setattr(registry, "_related_index", None)

    return use


def test_the_test_project_is_clean(model_checkpoint):
    from django.core import checks as django_checks

    messages = django_checks.run_checks(tags=["prodcat"])
    assert [m for m in messages if not m.is_silenced()] == []


@pytest.mark.parametrize(
    ("backend", "says"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", "each web process counts alone"),
        ("django.core.cache.backends.dummy.DummyCache", "nothing is counted"),
    ],
)
def test_w011_throttles_on_a_per_process_cache(settings, backend, says):
    settings.CACHES = {"default": {"BACKEND": backend}}
    [message] = checks.check_throttle_cache()
    assert message.id == "prodcat.W011" and says in message.msg
    assert "AUTH_FAILURE_RATE" in message.msg


def test_w011_quiet_with_a_shared_cache_or_the_throttles_off(settings, tmp_path):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        }
    }
    assert checks.check_throttle_cache() == []
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.PRODCAT = {**settings.PRODCAT, "API_THROTTLE_RATE": None, "AUTH_FAILURE_RATE": None}
    assert checks.check_throttle_cache() == []


def test_w001_no_model_registered(only_spec):
    only_spec()
    [message] = checks.check_registry()
    assert message.id == "prodcat.W001"
    assert "prodcat_django.register(" in message.hint


def test_e001_missing_fields_are_refused_by_register_and_reported(only_spec):
    # register() refuses them at once (Celery workers never run the checks) ...
    with pytest.raises(ImproperlyConfigured, match="ProductSuggestion has no field 'name'"):
        registry.register(
            ProductSuggestion, title_field="name", category_field="kind", image_field="photo"
        )
    assert not registry.is_registered(ProductSuggestion)
    # ... and the check repeats it for an adapter that went wrong after registration.
    only_spec(FieldAdapter(Product, title_field="name", category_field="kind", image_field="photo"))
    messages = checks.check_registry()
    assert _ids(messages) == ["prodcat.E001"] * 3
    assert "testapp.Product has no field 'name'" in messages[0].msg


def test_e001_wrong_field_types(only_spec):
    only_spec(
        FieldAdapter(Product, title_field="price", category_field="price", image_field="price")
    )
    messages = checks.check_registry()
    assert _ids(messages) == ["prodcat.E001"] * 3
    assert "testapp.Product.price is a DecimalField" in messages[0].msg


def test_e001_an_adapter_without_its_methods(only_spec):
    class Incomplete(ProductAdapter):
        def get_text(self, product):
            return product.title

    only_spec(Incomplete(Product))
    [message] = checks.check_registry()
    assert message.id == "prodcat.E001"
    assert "must define get_categories, apply_category()" in message.msg


def test_e002_category_model_disagrees_with_the_foreign_key(only_spec):
    only_spec(
        FieldAdapter(
            VendorItem,
            title_field="name",
            category_field="kind",
            category_model=Product,
        )
    )
    [message] = checks.check_registry()
    assert message.id == "prodcat.E002"
    assert "not to category_model testapp.Product" in message.msg


def test_e002_unknown_category_and_related_input_models(only_spec):
    from prodcat_django.adapters import RelatedInput

    class Broken(ProductAdapter):
        category_model = "testapp.Nothing"
        related_inputs = [RelatedInput("testapp.NoImage", product=lambda image: None)]

        def get_text(self, product):
            return product.title

        def get_categories(self, product):
            return []

        def apply_category(self, product, category):
            pass

    only_spec(Broken(Product))
    messages = checks.check_registry()
    assert _ids(messages) == ["prodcat.E002"] * 2
    assert "'Nothing' model" in messages[0].msg
    assert "'NoImage' model" in messages[1].msg


def test_registered_models_pass(only_spec):
    only_spec(registry.get_adapter(Product), registry.get_adapter(VendorItem))
    assert checks.check_registry() == []
    assert registry.get_adapter(VendorItem).category_model is Category
    assert issubclass(registry.get_adapter(Product).model, models.Model)


def test_e003_missing_checkpoint(settings, tmp_path):
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(tmp_path / "nowhere")}
    [message] = checks.check_checkpoint()
    assert message.id == "prodcat.E003"
    assert "nowhere" in message.msg


def test_e003_tampered_checkpoint_and_cache(settings, tmp_path, prodcat_checkpoint):
    copy = tmp_path / "ckpt"
    shutil.copytree(prodcat_checkpoint, copy)
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(copy)}
    assert checks.check_checkpoint() == []
    weights = next(p for p in copy.iterdir() if p.suffix == ".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    [message] = checks.check_checkpoint()  # the new mtime invalidates the cached result
    assert message.id == "prodcat.E003"
    assert weights.name in message.msg


def test_w004_ml_packages_missing(monkeypatch):
    assert checks.check_ml_packages() == []
    monkeypatch.setattr(checks, "ML_PACKAGES", ("torch", "surely_not_installed_pkg"))
    [message] = checks.check_ml_packages()
    assert message.id == "prodcat.W004"
    assert "surely_not_installed_pkg" in message.msg


def test_w005_no_celery_app(settings):
    from celery import Celery

    assert checks.check_celery() == []
    from tests.celery_app import app

    # What Celery falls back to when the project created no app.
    Celery("default", set_as_current=False).set_current()
    try:
        [message] = checks.check_celery()
        assert message.id == "prodcat.W005"
        settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": False}
        assert checks.check_celery() == []
    finally:
        app.set_current()


def test_w006_unknown_keys(settings):
    settings.PRODCAT = {**settings.PRODCAT, "TOPK": 3}
    [message] = checks.check_settings()
    assert message.id == "prodcat.W006"
    assert "TOPK" in message.msg


def test_e006_not_a_dict(settings):
    settings.PRODCAT = "TOP_K=3"
    [message] = checks.check_settings()
    assert message.id == "prodcat.E006"


@pytest.mark.parametrize("matcher", ["no.such.module.matcher", "prodcat_django.conf.DEFAULTS"])
def test_e007_bad_matcher(settings, matcher):
    settings.PRODCAT = {**settings.PRODCAT, "CATEGORY_MATCHER": matcher}
    [message] = checks.check_settings()
    assert message.id == "prodcat.E007"


def test_e003_runs_the_loaders_validation(settings, tmp_path, prodcat_checkpoint):
    # A pickle written over the weights, with the manifest rehashed: the hashes agree, the
    # loader refuses it, and so must the check.
    import json
    import pickle

    from prodcat_django.ml.manifest import write_manifest

    copy = tmp_path / "ckpt"
    shutil.copytree(prodcat_checkpoint, copy)
    (copy / "weights.safetensors").write_bytes(pickle.dumps({"w": [0.0] * 16}))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.pop("files")
    write_manifest(copy, {k: v for k, v in manifest.items() if k != "format"})
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(copy)}
    [message] = checks.check_checkpoint()
    assert message.id == "prodcat.E003"
    assert "not a safetensors file" in message.msg


def test_w007_rabbitmq_without_publisher_confirms():
    from celery import current_app

    conf = current_app.conf
    saved = conf.broker_url, conf.broker_transport_options
    try:
        conf.broker_url, conf.broker_transport_options = "amqp://guest@localhost//", {}
        assert _ids(checks.check_broker_options()) == ["prodcat.W007"]
        conf.broker_transport_options = {"confirm_publish": True}
        assert checks.check_broker_options() == []
        conf.broker_url, conf.broker_transport_options = (
            "redis://localhost/0",
            {"visibility_timeout": 60},
        )
        [message] = checks.check_broker_options()
        assert message.id == "prodcat.W008"
        conf.broker_transport_options = {}  # kombu's default, one hour
        assert checks.check_broker_options() == []
    finally:
        conf.broker_url, conf.broker_transport_options = saved
