"""The fast paths of issue 12: an unchanged save takes no row lock and reads no photo; the
model loads when a worker process starts; a web process warms only when asked."""

from __future__ import annotations

import sys
import threading
from types import SimpleNamespace

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from prodcat_django import fingerprint, services, tasks
from prodcat_django.models import CategorySuggestion
from tests.shop_data import png_bytes

pytestmark = pytest.mark.django_db


def _count(product):
    return CategorySuggestion.objects.for_product(product).count()


def test_an_unchanged_save_takes_no_lock_and_one_read(make_product, commit_so_far):
    product = make_product(title="Suede loafers", image=png_bytes())
    commit_so_far()
    product.price = 12
    with CaptureQueriesContext(connection) as queries:
        product.save()
    sql = [q["sql"] for q in queries.captured_queries]
    assert not [s for s in sql if "FOR UPDATE" in s.upper()], sql
    assert len([s for s in sql if "prodcat_django_categorysuggestion" in s]) == 1, sql
    assert _count(product) == 1


def test_an_unchanged_save_does_not_read_a_photo_it_fingerprinted(
    make_product, commit_so_far, monkeypatch
):
    product = make_product(title="Vase", image=png_bytes())
    commit_so_far()
    opened = []
    real_open = FileSystemStorage.open

    def spy(storage, name, mode="rb"):
        opened.append(name)
        return real_open(storage, name, mode)

    monkeypatch.setattr(FileSystemStorage, "open", spy)
    product.price = 3
    product.save()
    assert opened == []
    assert _count(product) == 1


def test_a_changed_title_still_makes_a_new_suggestion(make_product, commit_so_far):
    product = make_product(title="Vase", image=png_bytes())
    commit_so_far()
    product.title = "Glass vase"
    product.save()
    assert _count(product) == 2


def test_a_rewritten_file_with_the_same_name_counts_as_changed(make_product, commit_so_far):
    product = make_product(title="Vase", image=png_bytes("red"))
    commit_so_far()
    path = product.image.path
    with open(path, "wb") as fh:  # same name, new bytes (and a new mtime)
        fh.write(png_bytes("blue") + b"\0" * 64)
    product.save()
    assert _count(product) == 2


def test_the_file_cache_is_bounded(make_product, monkeypatch):
    monkeypatch.setattr(fingerprint._known, "size", 2)
    fingerprint.clear_known_files()
    for n in range(4):
        make_product(title=f"Vase {n}", image=png_bytes())
    assert len(fingerprint._known) == 2


def _worker(queues, pool="prefork"):
    from celery.concurrency import get_implementation

    return SimpleNamespace(
        app=SimpleNamespace(
            amqp=SimpleNamespace(queues=SimpleNamespace(consume_from={q: None for q in queues}))
        ),
        pool_cls=get_implementation(pool),
    )


@pytest.fixture
def warm_ups(monkeypatch):
    """What the worker's signals asked of services.warmup: main-process loads, warm-ups."""
    calls = []
    monkeypatch.setattr(services.warmup, "load_before_fork", lambda: calls.append("load") or 0.1)
    monkeypatch.setattr(
        services.warmup, "start_warm_up", lambda reason: calls.append(f"warm: {reason}")
    )
    monkeypatch.setattr(tasks, "_consumes_prodcat", False)
    return calls


@pytest.mark.parametrize(
    ("queues", "loads"), [(["prodcat"], True), (["prodcat_train"], False), ([], True)]
)
def test_a_worker_loads_the_model_only_where_it_consumes_the_queue(queues, loads, warm_ups):
    tasks._worker_setup(sender="w@h", instance=_worker(queues))
    tasks._preload_model()  # in each pool process
    expected = ["load", "warm: worker process start"] if loads else []
    assert warm_ups == expected


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        ("prefork", ["load"]),  # the pool processes warm up (worker_process_init)
        ("solo", ["load"]),  # solo sends worker_process_init in the main process
        ("threads", ["load", "warm: worker start"]),  # no such signal: warm up here
    ],
)
def test_the_main_process_loads_before_the_pool_and_warms_up_only_without_a_fork(
    pool, expected, warm_ups
):
    tasks._worker_setup(sender="w@h", instance=_worker(["prodcat"], pool))
    assert warm_ups == expected


def test_a_main_process_that_cannot_load_logs_and_lets_the_pool_try(monkeypatch, caplog):
    def broken():
        raise RuntimeError("checkpoint unreadable")

    monkeypatch.setattr(services.warmup, "load_before_fork", broken)
    monkeypatch.setattr(tasks, "_consumes_prodcat", False)
    tasks._worker_setup(sender="w@h", instance=_worker(["prodcat"]))  # does not raise
    assert "could not load the model in the worker's main process" in caplog.text
    assert tasks._consumes_prodcat  # the pool processes still try (and report) themselves


def test_preload_can_be_turned_off(warm_ups, settings):
    settings.PRODCAT = {**settings.PRODCAT, "PRELOAD_MODEL": False}
    tasks._worker_setup(sender="w@h", instance=_worker(["prodcat"]))
    assert tasks._consumes_prodcat
    tasks._preload_model()
    assert warm_ups == []


def test_a_forked_process_adopts_the_shared_model_instead_of_loading(model_checkpoint):
    """What a prefork pool process does: the parent loads and shares, the child loads nothing."""
    from prodcat_django import classifier
    from tests.forks import facts_from_fork

    classifier.clear_cache()
    try:
        parent = classifier.get_predictor()
        classifier.share_with_forks()

        def child() -> dict:  # no forward pass, no torch threads touched
            return {
                "same": classifier.get_predictor() is parent,
                "loads": classifier.loads_in_this_process(),
                "adopted": classifier.adopted_in_this_process(),
            }

        facts = facts_from_fork(child)
        assert facts == {"same": True, "loads": 0, "adopted": True}
        assert classifier.loads_in_this_process() >= 1 and not classifier.adopted_in_this_process()
    finally:
        classifier.clear_cache()


def test_the_background_warm_up_loads_and_warms_the_model_once(monkeypatch):
    from prodcat_django.classifier import get_predictor
    from prodcat_django.services import runs
    from prodcat_django.training import store

    predictor = get_predictor()  # the tiny test model (the thread's own DB would be empty)
    passes = []
    monkeypatch.setattr(store, "active_predictor", lambda: SimpleNamespace(predictor=predictor))
    monkeypatch.setattr(runs, "warm_up_predictor", lambda p: passes.append(p))
    services.warmup.forget()
    try:
        thread = services.start_warm_up("test")
        assert services.start_warm_up("again") is thread  # once per process
        assert services.wait_for_warm_up(timeout=120)
    finally:
        services.warmup.forget()
    assert passes == [predictor]


def test_a_failed_warm_up_is_logged_not_raised(monkeypatch, caplog):
    from prodcat_django.training import store

    def broken():
        raise RuntimeError("checkpoint unreadable")

    monkeypatch.setattr(store, "active_predictor", broken)
    services.warmup.forget()
    try:
        services.start_warm_up("test")
        assert services.wait_for_warm_up(timeout=60)
    finally:
        services.warmup.forget()
    assert "could not load the model at test: RuntimeError: checkpoint unreadable" in caplog.text


def test_a_task_arriving_during_the_warm_up_does_not_run_another_pass(monkeypatch):
    from prodcat_django.classifier import get_predictor
    from prodcat_django.ml.predictor import Predictor
    from prodcat_django.services import runs

    predictor = get_predictor()
    calls = []
    real = Predictor.explain_many
    monkeypatch.setattr(
        Predictor, "explain_many", lambda self, *a, **kw: calls.append(1) or real(self, *a, **kw)
    )
    monkeypatch.setattr(runs, "_warmed", set())
    threads = [threading.Thread(target=runs.warm_up_predictor, args=(predictor,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]


def test_the_web_process_warms_up_only_when_asked(monkeypatch, settings):
    from prodcat_django import apps

    started = []
    monkeypatch.setattr(services, "start_warm_up", lambda reason: started.append(reason))
    monkeypatch.setattr(sys, "argv", ["gunicorn", "shop.wsgi"])
    apps._maybe_warm_up_web()
    assert started == []  # WARM_UP_WEB is off by default
    settings.PRODCAT = {**settings.PRODCAT, "WARM_UP_WEB": True}
    monkeypatch.setattr(sys, "argv", ["manage.py", "migrate"])
    apps._maybe_warm_up_web()
    monkeypatch.setattr(sys, "argv", ["/venv/bin/celery", "-A", "shop", "worker"])
    apps._maybe_warm_up_web()
    assert started == []
    monkeypatch.setattr(sys, "argv", ["gunicorn", "shop.wsgi"])
    apps._maybe_warm_up_web()
    assert started == ["web process start"]
