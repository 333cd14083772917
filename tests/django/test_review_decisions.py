"""A human decision is never overwritten or silently reversed: accept and reject are idempotent
and conditional, setting a category needs change permission on the product, and a failed
suggestion can be retried."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from prodcat_django import services
from prodcat_django.models import CategorySuggestion, SuggestionDecision, SuggestionStatus
from tests.testapp.models import Product

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_checkpoint")]


@pytest.fixture
def ready(make_product, categories):
    product = make_product(title="Leather ankle boots")
    suggestion = CategorySuggestion.objects.current_for(product).get()
    services.run_suggestions([suggestion.pk])
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.READY and suggestion.category_pk
    assert suggestion.product_category_pk == ""  # recorded: the product had no category
    return product, suggestion


def _other(categories, pk):
    return next(c for c in categories.values() if str(c.pk) != str(pk))


def _code(excinfo):
    return excinfo.value.code


def test_accepting_twice_is_a_no_op_with_one_audit_row(ready, reviewer):
    _, suggestion = ready
    services.accept(suggestion, user=reviewer)
    first = CategorySuggestion.objects.get(pk=suggestion.pk).reviewed_at
    services.accept(suggestion, user=reviewer)
    assert SuggestionDecision.objects.count() == 1
    assert CategorySuggestion.objects.get(pk=suggestion.pk).reviewed_at == first


def test_a_rejected_suggestion_is_not_silently_accepted(ready, reviewer):
    product, suggestion = ready
    services.reject(suggestion, user=reviewer)
    with pytest.raises(ValidationError) as excinfo:
        services.accept(suggestion, user=reviewer)
    assert _code(excinfo) == "already_decided"
    assert "already rejected by reviewer" in excinfo.value.messages[0]
    product.refresh_from_db()
    assert product.category is None
    services.accept(suggestion, user=reviewer, override=True)
    product.refresh_from_db()
    assert str(product.category_id) == suggestion.category_pk
    assert list(SuggestionDecision.objects.order_by("pk").values_list("action", flat=True)) == [
        "rejected",
        "accepted",
    ]


def test_an_accepted_suggestion_is_not_silently_rejected_or_recategorised(
    ready, reviewer, categories
):
    product, suggestion = ready
    services.accept(suggestion, user=reviewer)
    other = _other(categories, suggestion.category_pk)
    for call in (
        lambda: services.reject(suggestion, user=reviewer),
        lambda: services.reject(suggestion, user=reviewer, category=other),
        lambda: services.accept(suggestion, user=reviewer, category=other),
    ):
        with pytest.raises(ValidationError) as excinfo:
            call()
        assert _code(excinfo) == "already_decided"
    product.refresh_from_db()
    assert str(product.category_id) == suggestion.category_pk
    assert SuggestionDecision.objects.count() == 1


def test_the_same_rejection_again_is_a_no_op_and_another_correction_needs_override(
    ready, reviewer, categories
):
    product, suggestion = ready
    first = _other(categories, suggestion.category_pk)
    services.reject(suggestion, user=reviewer, category=first)
    services.reject(suggestion, user=reviewer, category=first.pk)
    assert SuggestionDecision.objects.count() == 1
    second = _other(categories, first.pk)
    with pytest.raises(ValidationError) as excinfo:
        services.reject(suggestion, user=reviewer, category=second)
    assert _code(excinfo) == "already_decided"
    services.reject(suggestion, user=reviewer, category=second, override=True)
    product.refresh_from_db()
    assert product.category == second
    assert SuggestionDecision.objects.count() == 2


def test_accept_refuses_when_the_category_was_set_by_hand_since(ready, reviewer, categories):
    product, suggestion = ready
    by_hand = _other(categories, suggestion.category_pk)
    Product.objects.filter(pk=product.pk).update(category=by_hand)
    with pytest.raises(ValidationError) as excinfo:
        services.accept(suggestion, user=reviewer)
    assert _code(excinfo) == "category_changed"
    assert f"to {by_hand}" in excinfo.value.messages[0]
    product.refresh_from_db()
    assert product.category == by_hand  # kept
    assert not SuggestionDecision.objects.exists()
    services.accept(suggestion, user=reviewer, confirm_category_change=True)
    product.refresh_from_db()
    assert str(product.category_id) == suggestion.category_pk


def test_accept_where_the_product_already_has_that_category_needs_no_confirmation(ready, reviewer):
    product, suggestion = ready
    Product.objects.filter(pk=product.pk).update(category_id=suggestion.category_pk)
    services.accept(suggestion, user=reviewer)
    assert SuggestionDecision.objects.count() == 1


def test_an_auto_accept_can_be_confirmed_or_reversed_without_override(
    make_product, categories, reviewer, confident_checkpoint, settings
):
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_ACCEPT": True}
    product = make_product(title="Leather ankle boots")
    suggestion = CategorySuggestion.objects.current_for(product).get()
    assert services.run_suggestions([suggestion.pk]).auto_accepted == [suggestion.pk]
    suggestion.refresh_from_db()
    services.accept(suggestion, user=reviewer)  # a person confirms the model's decision
    assert not CategorySuggestion.objects.get(pk=suggestion.pk).auto_accepted
    assert list(SuggestionDecision.objects.order_by("pk").values_list("action", flat=True)) == [
        "auto_accepted",
        "accepted",
    ]


def test_review_permission_alone_cannot_set_a_category(ready, review_only, categories):
    product, suggestion = ready
    with pytest.raises(PermissionDenied, match="change_product"):
        services.accept(suggestion, user=review_only)
    with pytest.raises(PermissionDenied, match="change_product"):
        services.reject(suggestion, user=review_only, category=_other(categories, 0))
    product.refresh_from_db()
    assert product.category is None
    # A plain rejection writes no product: the review permission is enough.
    services.reject(suggestion, user=review_only)
    assert CategorySuggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.REJECTED


def test_a_failed_suggestion_can_be_retried(make_product, categories, reviewer, clerk):
    product = make_product(title="Boots", image=b"not an image")
    failed = CategorySuggestion.objects.current_for(product).get()
    services.run_suggestions([failed.pk])
    failed.refresh_from_db()
    assert failed.status == SuggestionStatus.FAILED
    with pytest.raises(PermissionDenied):
        services.retry(failed, user=clerk)
    fresh = services.retry(failed, user=reviewer)
    assert fresh.pk != failed.pk and fresh.is_current
    assert fresh.status == SuggestionStatus.PENDING
    failed.refresh_from_db()
    assert (failed.is_current, failed.status) == (False, SuggestionStatus.OBSOLETE)
    with pytest.raises(ValidationError) as excinfo:
        services.retry(failed, user=reviewer)
    assert _code(excinfo) == "not_current"
    with pytest.raises(ValidationError) as excinfo:
        services.retry(fresh, user=reviewer)
    assert _code(excinfo) == "not_failed"
