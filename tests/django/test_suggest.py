"""The synchronous suggest() and explain() services, on the tiny random model."""

import pytest
from django.core.exceptions import ValidationError

from prodcat_django import services
from prodcat_django.models import CategorySuggestion
from tests.conftest import TEST_LABELS
from tests.django.conftest import png_bytes

pytestmark = pytest.mark.usefixtures("model_checkpoint")


def _messages(exc: pytest.ExceptionInfo) -> dict:
    return exc.value.message_dict


def test_suggest_title_and_image():
    prediction = services.suggest("Leather ankle boots", png_bytes(), top_k=2)
    assert len(prediction.labels) == 2
    assert {ls.label for ls in prediction.labels} <= set(TEST_LABELS)
    assert prediction.labels[0].score >= prediction.labels[1].score
    assert isinstance(prediction.auto_accept, bool)


def test_suggest_title_only_and_image_only_use_top_k_setting(settings):
    settings.PRODCAT = {**settings.PRODCAT, "TOP_K": 4}
    assert len(services.suggest("Boots", None).labels) == 4
    assert len(services.suggest("", png_bytes()).labels) == 4


def test_suggest_needs_some_input():
    with pytest.raises(ValidationError) as exc:
        services.suggest("   ", None)
    assert "title" in _messages(exc)


@pytest.mark.parametrize(
    ("top_k", "message"),
    [(0, "top_k must be at least 1."), (-1, "top_k must be at least 1."), (5, "between 1 and 4")],
)
def test_top_k_must_be_within_the_labels(top_k, message):
    with pytest.raises(ValidationError) as exc:
        services.suggest("Boots", None, top_k=top_k)
    [got] = _messages(exc)["top_k"]
    assert message in got


def test_upload_size_limit(settings):
    settings.PRODCAT = {**settings.PRODCAT, "MAX_UPLOAD_BYTES": 100}
    with pytest.raises(ValidationError) as exc:
        services.suggest("Boots", png_bytes())
    [message] = _messages(exc)["image"]
    assert "the limit is 100" in message


def test_pixel_limit(settings):
    settings.PRODCAT = {**settings.PRODCAT, "MAX_IMAGE_PIXELS": 500}
    with pytest.raises(ValidationError) as exc:
        services.suggest("Boots", png_bytes(size=(100, 100)))
    assert "pixels" in _messages(exc)["image"][0]


def test_undecodable_image():
    with pytest.raises(ValidationError) as exc:
        services.suggest("Boots", b"GIF89a but not really")
    assert _messages(exc)["image"]


@pytest.mark.django_db
def test_explain_a_suggestion(make_product):
    product = make_product(title="Red leather handbag", image=png_bytes())
    explanation = services.explain(CategorySuggestion.objects.current_for(product).get())
    assert [word for word, _ in explanation.tokens]
    assert sum(w for _, w in explanation.tokens) == pytest.approx(1.0, abs=1e-4)
    assert len(explanation.regions) == 7
    assert sum(sum(row) for row in explanation.regions) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.django_db
def test_explain_a_deleted_product(make_product):
    product = make_product(title="Bag")
    suggestion = CategorySuggestion.objects.current_for(product).get()
    product.delete()
    with pytest.raises(ValidationError, match="no longer exists"):
        services.explain(suggestion)


@pytest.mark.django_db
def test_explain_with_a_broken_image(make_product):
    product = make_product(title="Bag", image=b"nope")
    with pytest.raises(ValidationError, match="cannot be read"):
        services.explain(CategorySuggestion.objects.current_for(product).get())
