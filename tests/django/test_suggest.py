"""The synchronous suggest() and explain() services, on the tiny random model."""

import pytest
from django.core.exceptions import ValidationError

from prodcat_django import services
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.conftest import TEST_LABELS
from tests.shop_data import png_bytes

# suggest() asks the model store which version is active: one query.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_checkpoint")]


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


def _run(product) -> CategorySuggestion:
    """Run the product's pending suggestion as the worker does and re-read it."""
    suggestion = CategorySuggestion.objects.current_for(product).get()
    services.run_suggestions([suggestion.pk])
    suggestion.refresh_from_db()
    return suggestion


@pytest.mark.django_db
def test_the_worker_stores_the_explanation_with_the_suggestion(make_product):
    product = make_product(title="Red leather handbag", image=png_bytes())
    suggestion = _run(product)
    assert suggestion.status == SuggestionStatus.READY
    stored = suggestion.explanation
    assert [word for word, _ in stored["tokens"]] == ["Red", "leather", "handbag"]
    assert len(stored["regions"]) == 7 and all(len(row) == 7 for row in stored["regions"])
    assert sum(map(sum, stored["regions"])) == pytest.approx(1.0, abs=1e-4)
    assert sum(stored["modality_weight"].values()) == pytest.approx(1.0, abs=1e-4)

    # Same forward pass as the labels: the model explains the product the same way again.
    from prodcat_django.classifier import get_predictor
    from prodcat_django.ml.images import load_image
    from prodcat_django.ml.predictor import ProductInput

    again = get_predictor().explain(
        ProductInput("Red leather handbag", load_image(product.image.read())),
        top_k=len(suggestion.labels),
    )
    assert [ls.label for ls in again.prediction.labels] == [d["label"] for d in suggestion.labels]
    flat = [v for row in stored["regions"] for v in row]
    assert flat == pytest.approx([v for row in again.regions for v in row], abs=1e-5)


@pytest.mark.django_db
def test_explain_reads_the_stored_explanation(make_product):
    product = make_product(title="Red leather handbag", image=png_bytes())
    suggestion = _run(product)
    explanation = services.explain(suggestion)
    assert [word for word, _ in explanation.tokens] == ["Red", "leather", "handbag"]
    assert sum(w for _, w in explanation.tokens) == pytest.approx(1.0, abs=1e-4)
    assert len(explanation.regions) == 7
    assert sum(sum(row) for row in explanation.regions) == pytest.approx(1.0, abs=1e-4)
    assert explanation.labels == tuple((d["label"], d["score"]) for d in suggestion.labels)
    # It does not need the product any more: the photo may go, the explanation stays.
    product.delete()
    assert services.explain(suggestion) == explanation


@pytest.mark.django_db
def test_explain_without_an_image(make_product):
    product = make_product(title="Leather strap watch")
    explanation = services.explain(_run(product))
    assert sum(map(sum, explanation.regions)) == 0
    assert explanation.modality_weight["image"] == 0
    assert sum(w for _, w in explanation.tokens) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.django_db
def test_explain_a_suggestion_without_one(make_product):
    product = make_product(title="Bag")
    suggestion = _run(product)
    CategorySuggestion.objects.filter(pk=suggestion.pk).update(explanation=None)  # an older row
    suggestion.refresh_from_db()
    with pytest.raises(ValidationError, match="ask for a new suggestion") as exc:
        services.explain(suggestion)
    assert exc.value.code == "no_explanation"

    suggestion.status = SuggestionStatus.PENDING
    with pytest.raises(ValidationError, match="not ready yet"):
        services.explain(suggestion)


@pytest.mark.django_db
def test_a_broken_image_fails_the_row_and_stores_no_explanation(make_product):
    product = make_product(title="Bag", image=b"nope")
    suggestion = _run(product)
    assert suggestion.status == SuggestionStatus.FAILED and suggestion.explanation is None
    with pytest.raises(ValidationError, match="failed"):
        services.explain(suggestion)


def test_suggest_runs_through_the_predictors_coalescer():
    """Concurrent requests in one process share forward passes (tests/ml/test_coalesce.py):
    suggest() goes through the active predictor's one coalescer, with the same result as a
    direct predict()."""
    from prodcat_django.ml.predictor import ProductInput
    from prodcat_django.services import inference
    from prodcat_django.training.store import active_predictor

    first = services.suggest("Leather ankle boots", None, top_k=2)
    predictor = active_predictor().predictor
    coalescer = inference._coalescer(predictor)
    assert inference._coalescer(predictor) is coalescer
    before = coalescer.batches
    again = services.suggest("Leather ankle boots", None, top_k=2)
    assert coalescer.batches == before + 1
    direct = predictor.predict([ProductInput("Leather ankle boots", None)], top_k=2)[0]
    assert again.labels == first.labels
    assert [ls.label for ls in again.labels] == [ls.label for ls in direct.labels]
