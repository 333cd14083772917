"""The bulk path: request_suggestions over a queryset, one task per chunk."""

import pytest

from prodcat_django import services
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.celery_app import app
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def products(make_product, settings):
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": False}
    made = [make_product(title=f"Product {n}") for n in range(12)]
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": True}
    return made


@pytest.fixture
def sent_tasks():
    """Every run_suggestions task published, as its list of ids (a Celery signal, no mock)."""
    from celery.signals import before_task_publish

    sent: list[list[int]] = []

    def record(sender=None, body=None, **kwargs):
        if sender == "prodcat.run_suggestions":
            sent.append(body[0][0])

    before_task_publish.connect(record, weak=False)
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False  # the memory:// broker: real publishing, no worker
    yield sent
    app.conf.task_always_eager = saved
    before_task_publish.disconnect(record)


def test_one_task_per_chunk(products, sent_tasks, reviewer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.request_suggestions(
            Product.objects.all(), user=reviewer, chunk_size=5, label="spring catalogue"
        )
    assert batch.total == 12
    assert (batch.created_by, batch.label) == (reviewer, "spring catalogue")
    assert [len(ids) for ids in sent_tasks] == [5, 5, 2]
    rows = CategorySuggestion.objects.filter(batch=batch)
    assert sorted(i for ids in sent_tasks for i in ids) == sorted(rows.values_list("pk", flat=True))
    assert set(rows.values_list("status", flat=True)) == {"pending"}
    assert set(rows.values_list("fingerprint", flat=True)) == {""}  # the worker computes it
    assert rows.filter(dispatched_at__isnull=True).count() == 0
    assert batch.progress()["pending"] == 12


def test_the_queryset_is_respected(products):
    subset = Product.objects.filter(pk__in=[p.pk for p in products[:4]])
    batch = services.request_suggestions(subset)
    assert batch.total == 4


def test_requesting_again_supersedes_and_keeps_one_current_each(products):
    services.request_suggestions(Product.objects.all())
    services.request_suggestions(Product.objects.all())
    assert CategorySuggestion.objects.current().count() == 12
    assert CategorySuggestion.objects.filter(status="obsolete").count() == 12


def test_only_missing_skips_covered_products(products):
    first, second, third, *_ = products
    services.request_suggestions(Product.objects.filter(pk__in=[first.pk, second.pk, third.pk]))
    CategorySuggestion.objects.current_for(second).update(status=SuggestionStatus.FAILED)
    batch = services.request_suggestions(Product.objects.all(), only_missing=True)
    assert batch.total == 10  # 9 never suggested + the failed one
    assert CategorySuggestion.objects.current_for(first).get().batch_id != batch.pk


@pytest.mark.usefixtures("model_checkpoint")
def test_bulk_rows_run_and_get_their_fingerprint(products, django_capture_on_commit_callbacks):
    from prodcat_django.fingerprint import product_fingerprint

    with django_capture_on_commit_callbacks(execute=True):
        batch = services.request_suggestions(Product.objects.all())
    progress = batch.progress()
    assert (progress["ready"], progress["finished"]) == (12, True)
    suggestion = CategorySuggestion.objects.current_for(products[0]).get()
    assert suggestion.fingerprint == product_fingerprint(products[0])
    # an unchanged save afterwards makes no new suggestion
    products[0].save()
    assert CategorySuggestion.objects.for_product(products[0]).count() == 1


def test_a_save_while_a_bulk_row_waits_makes_no_duplicate(products):
    services.request_suggestions(Product.objects.filter(pk=products[0].pk))
    products[0].title = "Renamed"
    products[0].save()
    assert CategorySuggestion.objects.for_product(products[0]).count() == 1


def test_bad_chunk_size(products):
    with pytest.raises(ValueError, match="chunk_size"):
        services.request_suggestions(Product.objects.all(), chunk_size=-1)


def test_unregistered_queryset_is_refused(db):
    from django.contrib.auth.models import User

    from prodcat_django.registry import NotRegistered

    with pytest.raises(NotRegistered):
        services.request_suggestions(User.objects.all())


def test_a_refusing_broker_is_asked_once(products, monkeypatch, django_capture_on_commit_callbacks):
    # A hung broker costs BROKER_TIMEOUT per try: after the first refused chunk the rest are
    # left, pending and unsent, for the sweep.
    tries = []

    def refuse(ids):
        tries.append(list(ids))
        return False

    monkeypatch.setattr(services.dispatching, "dispatch", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.request_suggestions(Product.objects.all(), chunk_size=5)
    assert [len(ids) for ids in tries] == [5]
    rows = CategorySuggestion.objects.filter(batch=batch)
    assert rows.filter(status="pending", dispatched_at__isnull=True).count() == 12
    assert services.stuck_suggestions().count() == 12
