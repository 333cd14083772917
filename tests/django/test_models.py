import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction

from prodcat_django.models import (
    CategorySuggestion,
    DecisionAction,
    SuggestionBatch,
    SuggestionDecision,
    SuggestionStatus,
)
from tests.testapp.models import Product, ProductSuggestion

pytestmark = pytest.mark.django_db


def _ct():
    return ContentType.objects.get_for_model(Product)


def test_at_most_one_current_suggestion_per_product():
    CategorySuggestion.objects.create(content_type=_ct(), object_id="1", fingerprint="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        CategorySuggestion.objects.create(content_type=_ct(), object_id="1", fingerprint="b")
    # the same inputs twice are just as impossible
    with pytest.raises(IntegrityError), transaction.atomic():
        CategorySuggestion.objects.create(content_type=_ct(), object_id="1", fingerprint="a")
    # history rows (not current) are free
    for _ in range(2):
        CategorySuggestion.objects.create(
            content_type=_ct(), object_id="1", fingerprint="a", is_current=False
        )
    assert CategorySuggestion.objects.filter(object_id="1").count() == 3
    assert CategorySuggestion.objects.current().filter(object_id="1").count() == 1


def test_foreign_key_base_works_with_a_real_foreign_key():
    product = Product.objects.create(title="Canvas tote bag")
    first = ProductSuggestion.objects.create(product=product, label="Bags", score=0.9)
    assert list(product.fk_suggestions.all()) == [first]
    assert first.status == SuggestionStatus.PENDING
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductSuggestion.objects.create(product=product, label="Shoes")
    first.is_current = False
    first.save()
    ProductSuggestion.objects.create(product=product, label="Shoes")
    assert product.fk_suggestions.filter(is_current=True).get().label == "Shoes"


def test_batch_progress_counts_statuses():
    batch = SuggestionBatch.objects.create(content_type=_ct(), total=4)
    statuses = ["pending", "running", "ready", "failed"]
    for n, status in enumerate(statuses):
        CategorySuggestion.objects.create(
            content_type=_ct(), object_id=str(n), status=status, batch=batch
        )
    progress = batch.progress()
    assert progress["pending"] == progress["running"] == progress["ready"] == 1
    assert progress["failed"] == 1
    assert progress["accepted"] == 0
    assert progress["total"] == 4
    assert progress["done"] == 2
    assert progress["finished"] is False
    CategorySuggestion.objects.filter(batch=batch, status__in=["pending", "running"]).update(
        status="ready"
    )
    assert batch.progress()["finished"] is True
    assert batch.progress()["done"] == 4


def test_decisions_are_append_only():
    suggestion = CategorySuggestion.objects.create(content_type=_ct(), object_id="9")
    decision = SuggestionDecision.objects.create(
        suggestion=suggestion,
        content_type=_ct(),
        object_id="9",
        action=DecisionAction.ACCEPTED,
    )
    decision.note = "changed"
    with pytest.raises(ValueError, match="append-only"):
        decision.save()
    with pytest.raises(ValueError, match="append-only"):
        decision.delete()
    # and the suggestion it refers to cannot be deleted either
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        suggestion.delete()


def test_review_permission_exists():
    from django.contrib.auth.models import Permission

    perm = Permission.objects.get(codename="review_categorysuggestion")
    assert perm.content_type.model_class() is CategorySuggestion


def test_str():
    s = CategorySuggestion(label="Shoes", score=0.875, status="ready")
    assert str(s) == "Shoes (88%) [ready]"
    assert str(CategorySuggestion()) == "suggestion [pending]"
