"""Leases, crash isolation, per-pass time limits and database retries of the worker's run,
on the tiny model in eager mode (the real-process versions are in tests/faults)."""

import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from prodcat_django import services
from prodcat_django.models import CategorySuggestion, SuggestionStatus

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_checkpoint")]


def _rows(*products):
    return [CategorySuggestion.objects.current_for(p).get() for p in products]


def _held(rows, owner, *, in_flight=(), lease=timedelta(seconds=60), crashes=0):
    """Rows as a worker leaves them when it dies: running under ``owner``'s lease."""
    CategorySuggestion.objects.filter(pk__in=[r.pk for r in rows]).update(
        status=SuggestionStatus.RUNNING,
        lease_owner=owner,
        lease_until=timezone.now() + lease,
        attempts=1,
        crashes=crashes,
    )
    CategorySuggestion.objects.filter(pk__in=[r.pk for r in in_flight]).update(in_flight=True)


def test_a_live_lease_keeps_other_deliveries_off(make_product):
    [row] = _rows(make_product(title="Boots"))
    _held([row], "task-a")
    report = services.run_suggestions([row.pk], owner="task-b")
    assert report.skipped == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.lease_owner) == (SuggestionStatus.RUNNING, "task-a")
    # Its own redelivery takes it back at once; the write clears the lease.
    assert services.run_suggestions([row.pk], owner="task-a").ready == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.lease_until, row.in_flight) == (SuggestionStatus.READY, None, False)


def test_an_expired_lease_is_taken_over(make_product):
    [row] = _rows(make_product(title="Boots"))
    _held([row], "task-a", lease=timedelta(seconds=-1))
    assert services.run_suggestions([row.pk], owner="task-b").ready == [row.pk]


def test_a_crash_costs_the_culprit_only(make_product, monkeypatch):
    from prodcat_django.ml.predictor import Predictor

    rows = _rows(*(make_product(title=f"Boots {i}") for i in range(6)))
    # The worker died in a pass holding rows 0-3; rows 4-5 were claimed but not started.
    _held(rows, "task-a", in_flight=rows[:4])
    seen = []
    original = Predictor.explain_many

    def spy(self, items, **kwargs):
        if items[0].title != "warm-up":  # the one-off pass when a process loads the model
            seen.append([item.title for item in items])
        return original(self, items, **kwargs)

    monkeypatch.setattr(Predictor, "explain_many", spy)
    report = services.run_suggestions([r.pk for r in rows], owner="task-a")
    assert sorted(report.ready) == sorted(r.pk for r in rows)
    # The two that were not in the pass run together; the four suspects run alone, after.
    assert seen == [["Boots 4", "Boots 5"], ["Boots 0"], ["Boots 1"], ["Boots 2"], ["Boots 3"]]
    crashes = dict(CategorySuggestion.objects.values_list("pk", "crashes"))
    assert [crashes[r.pk] for r in rows] == [1, 1, 1, 1, 0, 0]


def test_a_product_that_keeps_killing_its_worker_is_failed_with_that_reason(make_product):
    culprit, neighbour = _rows(make_product(title="Poison"), make_product(title="Boots"))
    _held([culprit, neighbour], "task-a", in_flight=[culprit])
    CategorySuggestion.objects.filter(pk=culprit.pk).update(crashes=services.MAX_CRASHES - 1)
    report = services.run_suggestions([culprit.pk, neighbour.pk], owner="task-a")
    assert (report.failed, report.ready) == ([culprit.pk], [neighbour.pk])
    culprit.refresh_from_db()
    assert culprit.status == SuggestionStatus.FAILED
    assert culprit.crashes == services.MAX_CRASHES
    assert f"died {services.MAX_CRASHES} times" in culprit.error


def test_rows_left_in_flight_by_a_database_error_are_not_suspects(make_product):
    [row] = _rows(make_product(title="Boots"))
    _held([row], "task-a", in_flight=[row])
    services.run_suggestions([row.pk], owner="task-a", after_database_error=True)
    row.refresh_from_db()
    assert (row.status, row.crashes) == (SuggestionStatus.READY, 0)


def test_a_hanging_product_times_out_alone(make_product, settings, monkeypatch):
    from prodcat_django.ml.predictor import Predictor

    # Generous for the products that do not hang (a loaded CI machine), short for the test.
    settings.PRODCAT = {**settings.PRODCAT, "TIME_LIMIT_PER_PRODUCT": 1.0}
    products = [make_product(title=t) for t in ("Boots", "HANG", "Shirt")]
    rows = _rows(*products)
    original = Predictor.explain_many

    def hangs_on_one(self, items, **kwargs):
        if any(item.title == "HANG" for item in items):
            time.sleep(60)
        return original(self, items, **kwargs)

    monkeypatch.setattr(Predictor, "explain_many", hangs_on_one)
    started = time.monotonic()
    report = services.run_suggestions([r.pk for r in rows])
    assert time.monotonic() - started < 30  # the pass (5 s), then one by one (3 s each)
    assert report.failed == [rows[1].pk], [(r.pk, r.status, r.error) for r in _rows(*products)]
    assert sorted(report.ready) == [rows[0].pk, rows[2].pk]
    rows[1].refresh_from_db()
    assert rows[1].error.startswith("timed out: classifying this product took longer than")


def test_the_sweep_goes_by_lease(make_product):
    now = timezone.now()
    unsent, dead, alive, lost = _rows(*(make_product(title=t) for t in "abcd"))
    CategorySuggestion.objects.filter(pk=dead.pk).update(
        status="running", lease_owner="t1", lease_until=now - timedelta(seconds=1), in_flight=True
    )
    CategorySuggestion.objects.filter(pk=alive.pk).update(
        status="running", lease_owner="t2", lease_until=now + timedelta(seconds=60)
    )
    CategorySuggestion.objects.filter(pk=lost.pk).update(
        dispatched_at=now - timedelta(seconds=90), lease_until=now - timedelta(seconds=1)
    )
    # A worker holds a live lease: the queue is busy, the sent row may just be waiting.
    assert set(services.stuck_suggestions().values_list("pk", flat=True)) == {unsent.pk, dead.pk}
    CategorySuggestion.objects.filter(pk=alive.pk).update(status="ready")
    assert set(services.stuck_suggestions().values_list("pk", flat=True)) == {
        unsent.pk,
        dead.pk,
        lost.pk,
    }
    # Sent again (eagerly here), the dead worker's row starts over: the claim counts the
    # crash it was in flight for, and the row ends ready.
    assert services.dispatch_pending() == 3
    dead.refresh_from_db()
    assert (dead.status, dead.crashes) == (SuggestionStatus.READY, 1)


def test_release_fails_the_pass_and_returns_the_rest(make_product):
    in_pass, waiting = _rows(make_product(title="a"), make_product(title="b"))
    _held([in_pass, waiting], "task-a", in_flight=[in_pass])
    assert services.release("task-a", in_flight_error="timed out") == 1
    in_pass.refresh_from_db()
    waiting.refresh_from_db()
    assert (in_pass.status, in_pass.error) == (SuggestionStatus.FAILED, "timed out")
    assert (waiting.status, waiting.dispatched_at, waiting.lease_owner) == ("pending", None, "")


def test_the_task_retries_database_errors_with_backoff(make_product, monkeypatch):
    from prodcat_django import tasks

    [row] = _rows(make_product(title="Boots"))
    calls = []
    real = services.run_suggestions

    def flaky(ids, **kwargs):
        calls.append(kwargs["after_database_error"])
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(ids, **kwargs)

    monkeypatch.setattr(services, "run_suggestions", flaky)
    # throw=False: let apply() run the eager retry instead of raising Retry.
    result = tasks.run_suggestions_task.apply(args=[[row.pk]], throw=False).get()
    assert calls == [False, True]
    assert result["ready"] == [row.pk]
    assert [tasks._database_backoff(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_task_defaults_for_recovery():
    from prodcat_django.tasks import run_suggestions_task

    assert run_suggestions_task.acks_late is True
    assert run_suggestions_task.reject_on_worker_lost is True
    from prodcat_django.conf import DEFAULTS

    # The task's default limits are sized for a default bulk chunk.
    soft, hard = services.task_time_limits(int(DEFAULTS["BULK_CHUNK_SIZE"]))
    assert (run_suggestions_task.soft_time_limit, run_suggestions_task.time_limit) == (soft, hard)
    assert services.task_time_limits(1)[0] < soft < hard


def test_the_tasks_soft_time_limit_fails_the_pass_and_returns_the_rest(
    make_product, settings, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    from prodcat_django import tasks
    from prodcat_django.ml.predictor import Predictor

    settings.PRODCAT = {**settings.PRODCAT, "TASK_BATCH_SIZE": 2}
    rows = _rows(*(make_product(title=f"Boots {i}") for i in range(4)))

    def soft_limit_strikes(self, items, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(Predictor, "explain_many", soft_limit_strikes)
    assert tasks.run_suggestions_task.apply(args=[[r.pk for r in rows]]).get() is None
    statuses = dict(CategorySuggestion.objects.values_list("pk", "status"))
    assert [statuses[r.pk] for r in rows] == ["failed", "failed", "pending", "pending"]
    assert CategorySuggestion.objects.get(pk=rows[0].pk).error.startswith("timed out")


def test_a_database_error_while_finding_the_model_is_not_a_broken_model(make_product, monkeypatch):
    from prodcat_django.models import WorkerHealth
    from prodcat_django.training import store

    [row] = _rows(make_product(title="Boots"))

    def database_away():
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(store, "active_predictor", database_away)
    with pytest.raises(OperationalError):  # the task retries it; the worker keeps consuming
        services.run_suggestions([row.pk], worker="w1")
    assert not WorkerHealth.objects.filter(hostname="w1").exists()
