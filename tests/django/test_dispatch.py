"""Dispatching with the broker down, slow, back, and real (Redis when it runs here)."""

import socket
import time
from collections.abc import Iterator

import pytest

from prodcat_django import services
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.celery_app import app
from tests.needs import missing

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker() -> Iterator:
    """Switch the test Celery app from eager mode to a real broker URL (restored afterwards)."""
    saved = (app.conf.task_always_eager, app.conf.broker_url)

    def use(url: str) -> None:
        app.conf.task_always_eager = False
        app.conf.broker_url = url

    yield use
    app.conf.task_always_eager, app.conf.broker_url = saved


@pytest.fixture
def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections but never answers: a hung broker."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def _current(product):
    return CategorySuggestion.objects.current_for(product).get()


@pytest.mark.parametrize("scheme", ["redis://127.0.0.1:{}/0", "amqp://guest:guest@127.0.0.1:{}//"])
def test_save_with_the_broker_down_is_fast_and_leaves_the_row_pending(
    scheme, broker, closed_port, make_product, django_capture_on_commit_callbacks, caplog
):
    broker(scheme.format(closed_port))
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        product = make_product(title="Leather ankle boots")
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the save took {elapsed:.2f}s with the broker down"
    suggestion = _current(product)
    assert (suggestion.status, suggestion.dispatched_at) == (SuggestionStatus.PENDING, None)
    assert "could not send 1 suggestion(s) to the broker" in caplog.text
    assert services.dispatch_pending() == 0  # still down: nothing sent, nothing raised


def test_a_hung_broker_costs_at_most_the_timeout(broker, silent_port, make_product, settings):
    settings.PRODCAT = {**settings.PRODCAT, "BROKER_TIMEOUT": 0.5}
    broker(f"amqp://guest:guest@127.0.0.1:{silent_port}//")
    product = make_product(title="Boots")
    started = time.monotonic()
    assert services.dispatch([_current(product).pk]) is False
    assert time.monotonic() - started < 2.0
    assert _current(product).dispatched_at is None


@pytest.mark.usefixtures("model_checkpoint")
def test_dispatch_pending_sends_them_once_the_broker_is_back(
    broker, closed_port, make_product, django_capture_on_commit_callbacks, categories
):
    broker(f"redis://127.0.0.1:{closed_port}/0")
    with django_capture_on_commit_callbacks(execute=True):
        products = [make_product(title=f"Boots {n}") for n in range(3)]
    assert {_current(p).status for p in products} == {"pending"}
    app.conf.task_always_eager = True  # "back", with the task run inline
    assert services.dispatch_pending() == 3
    for product in products:
        suggestion = _current(product)
        assert suggestion.status == SuggestionStatus.READY
        assert suggestion.dispatched_at is not None
    assert services.dispatch_pending() == 0


def test_dispatch_pending_picks_stuck_rows_only(make_product):
    from datetime import timedelta

    from django.utils import timezone

    fresh, stuck, done = (make_product(title=t) for t in ("a", "b", "c"))
    long_ago = timezone.now() - timedelta(hours=1)
    CategorySuggestion.objects.filter(pk=_current(fresh).pk).update(dispatched_at=timezone.now())
    CategorySuggestion.objects.filter(pk=_current(stuck).pk).update(
        status="running", dispatched_at=long_ago, updated_at=long_ago
    )
    CategorySuggestion.objects.filter(pk=_current(done).pk).update(status="ready")
    ids = set(services.stuck_suggestions().values_list("pk", flat=True))
    assert ids == {_current(stuck).pk}
    assert services.stuck_suggestions(older_than=7200).count() == 0


def _redis_url() -> str:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        missing("Redis is not running on 127.0.0.1:6379 (start it to run this test)")
    return "redis://127.0.0.1:6379/14"


def test_dispatch_to_a_real_redis_broker_on_the_prodcat_queue(broker, make_product, settings):
    import base64
    import json

    import redis

    url = _redis_url()
    settings.PRODCAT = {**settings.PRODCAT, "QUEUE": "prodcat-test-dispatch"}
    client = redis.Redis.from_url(url)
    client.delete("prodcat-test-dispatch")
    broker(url)
    try:
        product = make_product(title="Boots")
        suggestion = _current(product)
        assert services.dispatch_pending() == 1
        assert _current(product).dispatched_at is not None
        [raw] = client.lrange("prodcat-test-dispatch", 0, -1)
        message = json.loads(raw)
        assert message["headers"]["task"] == "prodcat.run_suggestions"
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert (args, kwargs) == ([[suggestion.pk]], {})
    finally:
        client.delete("prodcat-test-dispatch")


def test_dispatch_of_nothing_is_a_no_op():
    assert services.dispatch([]) is True


@pytest.mark.usefixtures("model_checkpoint")
def test_the_periodic_sweep_task(make_product):
    from prodcat_django.tasks import dispatch_pending_task

    product = make_product(title="Boots")  # pending: its on_commit never ran in this test
    assert dispatch_pending_task.name == "prodcat.dispatch_pending"
    assert dispatch_pending_task.apply(kwargs={"older_than": 60}).get() == 1
    assert _current(product).status == SuggestionStatus.READY
