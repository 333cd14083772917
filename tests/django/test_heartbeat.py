"""The worker's heartbeat (prodcat_django.worker) and what the admin says from it.

The consumer here is a stand-in with the three attributes the heartbeat reads (hostname,
timer, task_consumer); the real worker is in tests/e2e/test_worker_heartbeat.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from prodcat_django import services, worker
from prodcat_django.admin import health as admin_health
from prodcat_django.models import WorkerHealth
from prodcat_django.services import health
from tests.celery_app import app

pytestmark = pytest.mark.django_db


class TaskConsumer:
    def __init__(self, queues: set[str]) -> None:
        self.queues = queues

    def consuming_from(self, queue: str) -> bool:
        return queue in self.queues


class Timer:
    def __init__(self) -> None:
        self.calls: list[tuple[float, Any, tuple]] = []

    def call_repeatedly(self, secs: float, fun: Any, args: tuple = ()) -> Any:
        self.calls.append((secs, fun, args))
        return self

    def cancel(self) -> None:
        self.cancelled = True


class Consumer:
    def __init__(self, queues: set[str], hostname: str = "w1@shop") -> None:
        self.hostname = hostname
        self.timer = Timer()
        self.task_consumer: TaskConsumer | None = TaskConsumer(queues)


@pytest.fixture
def through_a_broker():
    """Tasks go to a worker (not run eagerly), so a worker is expected."""
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def no_running_heartbeat():
    worker._state.update(entry=None, failing=False)
    yield
    worker._state.update(entry=None, failing=False)


def test_an_idle_worker_on_the_queue_beats_on_a_timer(settings):
    settings.PRODCAT = {**settings.PRODCAT, "WORKER_HEARTBEAT": 7}
    consumer = Consumer({"prodcat"})
    worker.start_heartbeat(sender=consumer)
    row = WorkerHealth.objects.get(hostname="w1@shop")  # at once, no task needed
    assert not row.model_loaded and row.error == ""
    [(secs, fun, args)] = consumer.timer.calls
    assert secs == 7 and args == (consumer,)

    WorkerHealth.objects.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert fun(*args) is True
    assert WorkerHealth.objects.get(pk=row.pk).updated_at > timezone.now() - timedelta(minutes=1)
    # A heartbeat-only row is not "a worker that cannot load the model".
    assert not services.workers_without_model().exists()


def test_a_beat_keeps_what_the_pool_wrote_about_the_model(settings):
    WorkerHealth.objects.create(
        hostname="w1@shop", pid=4242, model_loaded=True, model_name="tiny", model_version="1"
    )
    assert worker.beat(Consumer({"prodcat"}))
    row = WorkerHealth.objects.get(hostname="w1@shop")
    assert (row.pid, row.model_loaded, row.model_name, row.model_version) == (
        4242,
        True,
        "tiny",
        "1",
    )


def test_no_beat_off_the_queue_or_while_reconnecting(settings):
    assert worker.beat(Consumer({"prodcat_train"})) is False
    reconnecting = Consumer({"prodcat"})
    reconnecting.task_consumer = None
    assert worker.beat(reconnecting) is False
    assert not WorkerHealth.objects.exists()


def test_heartbeat_off_starts_no_timer(settings):
    settings.PRODCAT = {**settings.PRODCAT, "WORKER_HEARTBEAT": 0}
    consumer = Consumer({"prodcat"})
    worker.start_heartbeat(sender=consumer)
    assert consumer.timer.calls == [] and not WorkerHealth.objects.exists()


def test_a_database_error_does_not_break_the_worker(monkeypatch, caplog):
    def away(hostname):
        raise RuntimeError("database away")

    monkeypatch.setattr(health, "record_heartbeat", away)
    consumer = Consumer({"prodcat"})
    assert worker.beat(consumer) is False
    assert worker.beat(consumer) is False
    assert caplog.text.count("heartbeat of w1@shop not written") == 1  # once per outage


def test_a_clean_shutdown_removes_the_row(settings):
    consumer = Consumer({"prodcat"})
    worker.start_heartbeat(sender=consumer)
    assert WorkerHealth.objects.filter(hostname="w1@shop").exists()

    class WorkController:
        hostname = "w1@shop"

    worker.stop_heartbeat(sender=WorkController())
    assert consumer.timer.cancelled
    assert not WorkerHealth.objects.exists()


def test_the_admin_warns_when_no_worker_was_seen(through_a_broker, settings, make_product):
    settings.PRODCAT = {**settings.PRODCAT, "WORKER_LOST_AFTER": 120}
    warning = admin_health.warning()
    assert warning is not None
    assert "No worker is taking category suggestions" in warning["text"]
    assert "“prodcat” queue in the last 2 minutes" in warning["text"]
    assert warning["command"] == "celery -A <your project> worker -Q prodcat"

    health.record_heartbeat("w1@shop")
    assert admin_health.warning() is None  # idle, nothing waiting: all is well

    WorkerHealth.objects.update(updated_at=timezone.now() - timedelta(seconds=121))
    assert "No worker is taking" in admin_health.warning()["text"]


def test_no_worker_warning_needs_heartbeats_and_a_broker(settings, through_a_broker):
    settings.PRODCAT = {**settings.PRODCAT, "WORKER_HEARTBEAT": None}
    assert admin_health.warning() is None
    settings.PRODCAT = {**settings.PRODCAT, "WORKER_HEARTBEAT": 30}
    app.conf.task_always_eager = True  # the web process runs the tasks itself
    assert admin_health.warning() is None


def test_the_broken_model_warning_shows_no_server_paths():
    WorkerHealth.objects.create(
        hostname="w2@shop",
        checkpoint="/srv/shop/models/prodcat/1.0.0",
        error="CheckpointError: /srv/shop/models/prodcat/1.0.0/weights.safetensors is "
        "truncated (3/4 files checked)",
    )
    text = admin_health.warning()["text"]
    assert "/srv" not in text
    assert "…/1.0.0/weights.safetensors is truncated (3/4 files checked)" in text
    assert text.startswith("Worker w2@shop cannot load the model")


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("OSError: '/a/b/c.bin' missing", "OSError: '…/b/c.bin' missing"),
        (r"OSError: C:\models\v7\w.bin", "OSError: …/v7/w.bin"),
        ("ValueError: 3/4 and/or 1/2 labels", "ValueError: 3/4 and/or 1/2 labels"),
        ("", "no reason given"),
    ],
)
def test_without_paths(error, shown):
    assert admin_health.without_paths(error) == shown
