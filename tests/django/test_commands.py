"""The management commands, run through call_command."""

import shutil
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from prodcat_django.models import CategorySuggestion, SuggestionBatch
from prodcat_django.registry import get_adapter
from tests.celery_app import app
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


def _run(*args, **options):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def products(make_product, settings):
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": False}
    made = [make_product(title=f"Product {n}") for n in range(7)]
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": True}
    return made


@pytest.mark.usefixtures("model_checkpoint")
def test_backfill_sync_runs_inline(products, categories):
    out, err = _run("prodcat_backfill", "--model", "testapp.Product", "--sync", "--batch-size", "3")
    assert "Suggested 7 of 7 testapp.Product products" in out
    assert "7 ready" in out
    assert "suggest" in err  # the progress bar
    assert CategorySuggestion.objects.current().filter(status="ready").count() == 7


def test_backfill_queues_tasks(products, django_capture_on_commit_callbacks):
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False  # memory:// broker, no worker
    try:
        with django_capture_on_commit_callbacks(execute=True):
            out, _ = _run("prodcat_backfill", "--model", "testapp.product")
    finally:
        app.conf.task_always_eager = saved
    batch = SuggestionBatch.objects.get()
    assert f"Queued 7 of 7 testapp.Product products as batch {batch.pk}" in out
    assert "A Celery worker must consume that queue" in out and "worker -Q prodcat" in out
    assert f"/admin/prodcat_django/suggestionbatch/{batch.pk}/progress/" in out
    rows = CategorySuggestion.objects.filter(batch=batch)
    assert rows.count() == 7
    assert not rows.filter(dispatched_at__isnull=True).exists()


def test_backfill_only_missing(products):
    _run("prodcat_backfill", "--model", "testapp.Product")
    out, _ = _run("prodcat_backfill", "--model", "testapp.Product", "--only-missing")
    assert "Queued 0 of 7" in out


def test_backfill_needs_model_when_several_are_registered(products):
    with pytest.raises(CommandError, match="Several product models are registered"):
        _run("prodcat_backfill")
    with pytest.raises(CommandError, match=r"testapp\.Nothing is not a model registered"):
        _run("prodcat_backfill", "--model", "testapp.Nothing")
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        _run("prodcat_backfill", "--model", "testapp.Product", "--batch-size", "0")


def test_backfill_picks_the_only_registered_model(products, monkeypatch):
    from prodcat_django import registry

    # Only testapp.Product registered for this test (the registry is restored after it).
    only = {Product: get_adapter(Product)}
    monkeypatch.setattr(registry, "_registry", only)
    out, _ = _run("prodcat_backfill")
    assert "Queued 7 of 7 testapp.Product" in out


def test_verify_checkpoint_ok(prodcat_checkpoint):
    out, _ = _run("prodcat_verify_checkpoint", str(prodcat_checkpoint))
    assert "name:      tiny" in out
    assert "version:   0.0.1" in out
    assert "labels:    4\n" in out  # the short summary
    verbose, _ = _run("prodcat_verify_checkpoint", str(prodcat_checkpoint), "--verbose")
    assert "labels:    4: Shoes, Watches, Bags, Home Decor" in verbose
    assert "metrics:" in verbose and "metrics:" not in out
    assert "threshold: 0.5000" in out
    assert "OK" in out


def test_verify_checkpoint_defaults_to_the_setting(model_checkpoint):
    out, _ = _run("prodcat_verify_checkpoint")
    assert f"path:      {model_checkpoint}" in out


def test_verify_checkpoint_mismatch_exits_non_zero(prodcat_checkpoint, tmp_path):
    copy = tmp_path / "ckpt"
    shutil.copytree(prodcat_checkpoint, copy)
    (copy / "labels.json").write_text('["Shoes", "Watches", "Bags", "Home"]')
    with pytest.raises(CommandError, match="Checkpoint verification failed"):
        _run("prodcat_verify_checkpoint", str(copy))
    with pytest.raises(CommandError, match="verification failed"):
        _run("prodcat_verify_checkpoint", str(tmp_path / "missing"))


def test_dispatch_pending_command(make_product, model_checkpoint):
    product = make_product(title="Boots")  # pending, never dispatched (no commit in this test)
    out, _ = _run("prodcat_dispatch_pending", "--older-than", "60")
    assert "Dispatched 1 of 1 pending suggestion(s)." in out
    assert CategorySuggestion.objects.current_for(product).get().status == "ready"
    out, _ = _run("prodcat_dispatch_pending")
    assert "Dispatched 0 of 0" in out


def test_dispatch_pending_command_fails_while_the_broker_is_down(make_product):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    make_product(title="Boots")
    saved = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager, app.conf.broker_url = False, f"redis://127.0.0.1:{port}/0"
    try:
        with pytest.raises(CommandError, match="The broker refused 1 suggestion"):
            _run("prodcat_dispatch_pending")
    finally:
        app.conf.task_always_eager, app.conf.broker_url = saved
    assert Product.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # real commits, so each chunk's on_commit sends it
def test_backfill_with_the_broker_down_says_what_to_do(products):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    saved = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager, app.conf.broker_url = False, f"redis://127.0.0.1:{port}/0"
    try:
        out, err = _run("prodcat_backfill", "--model", "testapp.Product")
    finally:
        app.conf.task_always_eager, app.conf.broker_url = saved
    assert "Queued 7 of 7" in out
    assert "7 suggestion(s) could not be sent to the broker" in err
    assert CategorySuggestion.objects.filter(status="pending").count() == 7
    # with the broker reachable (the memory transport) nothing is reported
    app.conf.task_always_eager = False
    try:
        out, err = _run("prodcat_backfill", "--model", "testapp.Product")
    finally:
        app.conf.task_always_eager = saved[0]
    assert "Queued 7 of 7" in out
    assert "could not be sent" not in err
