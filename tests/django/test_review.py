"""accept / reject / corrections / permissions / audit, and auto-accept never overriding a human."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from prodcat_django import services
from prodcat_django.models import (
    CategorySuggestion,
    DecisionAction,
    SuggestionDecision,
    SuggestionStatus,
)
from tests.testapp.models import Category

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_checkpoint")]


@pytest.fixture
def ready(make_product, categories):
    """A product with a ready suggestion whose label matched a category."""
    product = make_product(title="Leather ankle boots")
    suggestion = CategorySuggestion.objects.current_for(product).get()
    services.run_suggestions([suggestion.pk])
    suggestion.refresh_from_db()
    assert suggestion.category_pk
    return product, suggestion


def test_accept_sets_the_category_and_records_the_decision(ready, reviewer):
    product, suggestion = ready
    returned = services.accept(suggestion, user=reviewer)
    assert (returned.status, suggestion.status) == ("accepted", "accepted")  # both up to date
    assert suggestion.reviewed_by == reviewer
    product.refresh_from_db()
    assert str(product.category_id) == suggestion.category_pk
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.ACCEPTED
    assert suggestion.reviewed_by == reviewer
    assert suggestion.reviewed_at is not None
    assert suggestion.correction_pk == ""
    [decision] = SuggestionDecision.objects.all()
    assert decision.action == DecisionAction.ACCEPTED
    assert (decision.user, decision.username) == (reviewer, "reviewer")
    assert decision.from_label == suggestion.label
    assert decision.category_pk == suggestion.category_pk
    assert decision.previous_category_pk == ""
    assert decision.model_version == "0.0.1"
    # accepting sets only the category: no new suggestion
    assert CategorySuggestion.objects.for_product(product).count() == 1


def test_accept_with_another_category(ready, reviewer, categories):
    product, suggestion = ready
    other = next(c for c in categories.values() if str(c.pk) != suggestion.category_pk)
    services.accept(suggestion, user=reviewer, category=other.pk)
    product.refresh_from_db()
    assert product.category == other
    suggestion.refresh_from_db()
    assert suggestion.correction_pk == str(other.pk)


def test_reviewing_needs_the_permission(ready, clerk):
    product, suggestion = ready
    with pytest.raises(PermissionDenied):
        services.accept(suggestion, user=clerk)
    with pytest.raises(PermissionDenied):
        services.reject(suggestion, user=clerk)
    product.refresh_from_db()
    assert product.category is None
    assert not SuggestionDecision.objects.exists()
    assert services.can_review(clerk) is False


def test_superuser_and_inactive_users(ready, django_user_model):
    _product, suggestion = ready
    boss = django_user_model.objects.create_superuser("boss", password="pw")
    gone = django_user_model.objects.create_superuser("gone", password="pw", is_active=False)
    assert services.can_review(boss)
    assert not services.can_review(gone)
    assert not services.can_review(None)
    services.accept(suggestion, user=boss)


def test_reject_without_correction_keeps_the_category(ready, reviewer, categories):
    product, suggestion = ready
    product.category = categories["Bags"]
    product.save()
    services.reject(suggestion, user=reviewer, note="not a bag shop item")
    product.refresh_from_db()
    assert product.category == categories["Bags"]
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.note) == ("rejected", "not a bag shop item")
    [decision] = SuggestionDecision.objects.all()
    assert (decision.action, decision.category_pk) == (DecisionAction.REJECTED, "")
    assert decision.note == "not a bag shop item"


def test_reject_with_correction_sets_the_category(ready, reviewer, categories):
    product, suggestion = ready
    services.reject(suggestion, user=reviewer, category=categories["Home Decor"])
    product.refresh_from_db()
    assert product.category == categories["Home Decor"]
    suggestion.refresh_from_db()
    assert suggestion.correction_pk == str(categories["Home Decor"].pk)
    decision = SuggestionDecision.objects.get()
    assert decision.category_pk == str(categories["Home Decor"].pk)


def test_a_category_that_does_not_exist_is_a_clear_error(ready, reviewer):
    product, suggestion = ready
    for bad in (987654, "not-a-number"):
        with pytest.raises(ValidationError, match="no category with the id, path or name") as exc:
            services.accept(suggestion, user=reviewer, category=bad)
        assert exc.value.code == "bad_category"
    with pytest.raises(ValidationError, match="is not a category"):
        services.reject(suggestion, user=reviewer, category=reviewer)
    product.refresh_from_db()
    assert product.category is None
    assert CategorySuggestion.objects.get(pk=suggestion.pk).status == "ready"


def test_accept_without_a_matched_category_asks_for_one(ready, reviewer):
    _product, suggestion = ready
    CategorySuggestion.objects.filter(pk=suggestion.pk).update(category_pk="")
    with pytest.raises(ValidationError, match="No shop category matches") as exc:
        services.accept(suggestion, user=reviewer)
    assert exc.value.code == "no_category"


def test_only_ready_and_current_suggestions_can_be_reviewed(
    make_product, reviewer, categories, commit_so_far
):
    product = make_product(title="Boots")
    pending = CategorySuggestion.objects.current_for(product).get()
    with pytest.raises(ValidationError, match="pending suggestion cannot be reviewed"):
        services.accept(pending, user=reviewer, category=categories["Shoes"])
    commit_so_far()
    product.title = "Rain boots"
    product.save()
    with pytest.raises(ValidationError, match="superseded") as exc:
        services.reject(pending, user=reviewer)
    assert exc.value.code == "not_current"


def test_a_failed_suggestion_can_be_rejected_with_a_correction(make_product, reviewer, categories):
    product = make_product(title="Bag", image=b"broken")
    suggestion = CategorySuggestion.objects.current_for(product).get()
    services.run_suggestions([suggestion.pk])
    services.reject(suggestion, user=reviewer, category=categories["Bags"])
    product.refresh_from_db()
    assert product.category == categories["Bags"]


def test_decisions_accumulate_as_an_audit_trail(ready, reviewer, categories):
    _product, suggestion = ready
    services.accept(suggestion, user=reviewer)
    services.reject(
        suggestion, user=reviewer, category=categories["Watches"], note="oops", override=True
    )
    actions = list(SuggestionDecision.objects.order_by("pk").values_list("action", flat=True))
    assert actions == ["accepted", "rejected"]
    second = SuggestionDecision.objects.order_by("pk").last()
    assert second.previous_category_pk == suggestion.category_pk
    reviewer.delete()
    assert SuggestionDecision.objects.filter(username="reviewer", user=None).count() == 2


# ------------------------------------------------------------------ auto-accept


@pytest.fixture
def auto_accept_on(settings, confident_checkpoint):
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_ACCEPT": True}


def _suggest(product):
    suggestion = CategorySuggestion.objects.current_for(product).get()
    return services.run_suggestions([suggestion.pk])


@pytest.mark.usefixtures("auto_accept_on")
def test_auto_accept_fills_an_empty_category(make_product, categories):
    product = make_product(title="Boots")
    report = _suggest(product)
    assert report.auto_accepted == report.ready
    product.refresh_from_db()
    assert product.category == categories["Shoes"]
    suggestion = product.category_suggestion
    assert (suggestion.status, suggestion.auto_accepted) == ("accepted", True)
    decision = SuggestionDecision.objects.get()
    assert (decision.action, decision.user, decision.is_human) == ("auto_accepted", None, False)


def test_auto_accept_is_off_by_default(make_product, categories, confident_checkpoint):
    product = make_product(title="Boots")
    report = _suggest(product)
    assert report.auto_accepted == []
    product.refresh_from_db()
    assert product.category is None


@pytest.mark.usefixtures("auto_accept_on")
def test_auto_accept_never_overwrites_a_human_decision(make_product, categories, reviewer):
    product = make_product(title="Boots")
    CategorySuggestion.objects.current_for(product).update(status="ready", label="Bags")
    services.reject(product.category_suggestion, user=reviewer, category=categories["Bags"])
    product.refresh_from_db()
    product.title = "Boots, waterproof"
    product.save()
    report = _suggest(product)
    assert report.auto_accepted == []
    product.refresh_from_db()
    assert product.category == categories["Bags"]
    assert product.category_suggestion.status == "ready"


@pytest.mark.usefixtures("auto_accept_on")
def test_auto_accept_never_overwrites_a_category_set_by_hand(make_product, categories):
    product = make_product(title="Boots", category=categories["Watches"])
    assert _suggest(product).auto_accepted == []
    product.refresh_from_db()
    assert product.category == categories["Watches"]


@pytest.mark.usefixtures("auto_accept_on")
def test_auto_accept_may_replace_its_own_earlier_choice(make_product, categories):
    product = make_product(title="Boots")
    _suggest(product)
    product.refresh_from_db()
    product.title = "Trail running shoes"
    product.save()
    assert len(_suggest(product).auto_accepted) == 1
    assert SuggestionDecision.objects.filter(action="auto_accepted").count() == 2


@pytest.mark.usefixtures("auto_accept_on")
def test_auto_accept_needs_a_matching_category(make_product):
    product = make_product(title="Boots")
    Category.objects.all().delete()
    report = _suggest(product)
    assert report.ready and not report.auto_accepted
