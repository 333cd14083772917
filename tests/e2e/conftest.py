"""End-to-end fixtures: real PostgreSQL, a real broker and a real Celery worker process.

Run with ``pytest -m e2e --ds=tests.settings_e2e``. Each service is probed before anything
touches it: a missing one fails the run when ``CI=true`` and skips the tests elsewhere, saying
what to start.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.e2e.harness import (
    CeleryWorker,
    Probe,
    delete_amqp_queue,
    delete_redis_queue,
    probe_amqp,
    probe_postgres,
    probe_redis,
    using_broker,
)
from tests.needs import missing


def require(probe: Probe) -> None:
    if probe.error is None:
        return
    missing(f"{probe.name} is not reachable ({probe.error}): {probe.hint}.")


@pytest.fixture(scope="session")
def e2e_settings() -> None:
    """These tests need the e2e settings; under the unit-test ones they skip, naming them."""
    if getattr(settings, "PRODCAT_E2E", False) is not True:
        pytest.skip("end-to-end tests run with: pytest -m e2e --ds=tests.settings_e2e")


@pytest.fixture(scope="session")
def postgres(e2e_settings: None) -> None:
    db = settings.DATABASES["default"]
    require(
        probe_postgres(
            db.get("HOST") or "127.0.0.1",
            int(db.get("PORT") or 5432),
            db.get("USER") or "postgres",
            db.get("PASSWORD"),
        )
    )


@pytest.fixture(scope="session")
def django_db_setup(postgres: None, django_db_setup: None) -> None:
    """pytest-django's test database, created only after PostgreSQL answered the probe."""


@pytest.fixture(scope="session")
def test_db_name(django_db_setup: None, django_db_blocker) -> str:
    from django.db import connection

    with django_db_blocker.unblock():
        return connection.settings_dict["NAME"]


@pytest.fixture(scope="session")
def worker_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("celery-worker-logs")


@pytest.fixture(scope="session", autouse=True)
def _e2e_media_cleanup() -> Iterator[None]:
    # settings_e2e made a temporary MEDIA_ROOT that the worker shares; remove it at the end.
    yield
    if getattr(settings, "PRODCAT_E2E_MEDIA_IS_TEMPORARY", False):
        shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@contextmanager
def own_queue(suffix: str) -> Iterator[tuple[str, str]]:
    """A Redis queue of this test's own, made prodcat's QUEUE for the block: the session's
    worker (started by earlier modules) must not take its tasks. Yields the broker URL and the
    run id to start workers with (``_start_worker(..., run_id=...)``)."""
    url = settings.PRODCAT_E2E_REDIS_URL
    run_id = f"{settings.PRODCAT_E2E_RUN_ID}{suffix}"
    queue = f"prodcat_e2e_{run_id}"
    session_queue = settings.PRODCAT["QUEUE"]
    require(probe_redis(url))
    delete_redis_queue(url, queue)
    settings.PRODCAT["QUEUE"] = queue  # read at each send (prodcat_settings is not cached)
    try:
        with using_broker(url):
            yield url, run_id
    finally:
        delete_redis_queue(url, queue)
        settings.PRODCAT["QUEUE"] = session_queue


def _start_worker(
    broker_url: str,
    db_name: str,
    log_path: Path,
    run_id: str | None = None,
    concurrency: int = 1,
) -> CeleryWorker:
    """``run_id``: another run id names another queue (the worker's settings derive QUEUE from
    it), so a module's own workers never share tasks with the session's worker."""
    run_id = run_id or settings.PRODCAT_E2E_RUN_ID
    worker = CeleryWorker(
        broker_url=broker_url,
        log_path=log_path,
        concurrency=concurrency,
        queue=f"prodcat_e2e_{run_id}",
        env={
            "PRODCAT_E2E_RUN_ID": run_id,
            "PRODCAT_E2E_DB_NAME": db_name,
            "PRODCAT_E2E_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        },
    )
    worker.start(ready_timeout=90)
    return worker


@pytest.fixture(scope="session")
def redis_worker(
    e2e_settings: None, test_db_name: str, worker_logs: Path
) -> Iterator[CeleryWorker]:
    """A worker consuming this run's queue from the dedicated Redis database."""
    url = settings.PRODCAT_E2E_REDIS_URL
    queue = settings.PRODCAT["QUEUE"]
    require(probe_redis(url))
    delete_redis_queue(url, queue)  # a rerun with the same run id starts empty
    with using_broker(url):
        worker = _start_worker(url, test_db_name, worker_logs / "redis-worker.log")
        try:
            yield worker
        finally:
            worker.stop()
            delete_redis_queue(url, queue)


@pytest.fixture(scope="module")
def amqp_worker(e2e_settings: None, test_db_name: str, worker_logs: Path) -> Iterator[CeleryWorker]:
    """The same worker on RabbitMQ, for the scenario that checks the AMQP transport."""
    url = settings.PRODCAT_E2E_AMQP_URL
    queue = settings.PRODCAT["QUEUE"]
    require(probe_amqp(url))
    delete_amqp_queue(url, queue)
    with using_broker(url):
        worker = _start_worker(url, test_db_name, worker_logs / "amqp-worker.log")
        try:
            yield worker
        finally:
            worker.stop()
            delete_amqp_queue(url, queue)


# --------------------------------------------------------------------------- shop data


@pytest.fixture(scope="session")
def checkpoint_info(e2e_settings: None) -> Any:
    """The checkpoint the worker loads (the shipped one unless PRODCAT_E2E_CHECKPOINT says)."""
    from prodcat_django.classifier import checkpoint_info as read_info
    from prodcat_django.ml.manifest import CheckpointError

    try:
        return read_info()
    except CheckpointError as exc:
        problem = str(exc)
    pytest.fail(
        f"{problem}. The e2e tests run the shipped model: commit it under model_checkpoint/, "
        "or point PRODCAT_E2E_CHECKPOINT at a checkpoint directory.",
        pytrace=False,
    )


@pytest.fixture
def label_categories(transactional_db: None, checkpoint_info: Any) -> dict[str, Any]:
    """One shop category per checkpoint label, so every suggestion matches a category."""
    from django.utils.text import slugify

    from tests.testapp.models import Category

    return {
        label: Category.objects.create(name=label, slug=slugify(label))
        for label in checkpoint_info.labels
    }


@pytest.fixture
def superuser(transactional_db: None) -> Any:
    from django.contrib.auth.models import User

    return User.objects.create_superuser("boss", "boss@example.com", "pw")


@pytest.fixture
def admin_client_e2e(superuser: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def no_auto_suggest(settings: Any) -> None:
    """Saving products queues nothing: the test queues them itself (bulk action, API)."""
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": False}
