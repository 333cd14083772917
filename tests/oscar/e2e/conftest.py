"""The Oscar project's end-to-end fixtures: the main e2e suite's service probes and test
database (tests/e2e/conftest.py), and a Redis worker that loads the Oscar project's settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.e2e.conftest import (  # noqa: F401 - fixtures
    _e2e_media_cleanup,
    checkpoint_info,
    django_db_setup,
    e2e_settings,
    postgres,
    require,
    test_db_name,
    worker_logs,
)
from tests.e2e.harness import CeleryWorker, delete_redis_queue, probe_redis, using_broker


@pytest.fixture(scope="session")
def redis_worker(
    e2e_settings: None,  # noqa: F811 - the fixtures imported above
    test_db_name: str,  # noqa: F811
    worker_logs: Path,  # noqa: F811
) -> Iterator[CeleryWorker]:
    """A worker with Oscar's apps, consuming this run's queue from the dedicated Redis DB."""
    url = settings.PRODCAT_E2E_REDIS_URL
    queue = settings.PRODCAT["QUEUE"]
    require(probe_redis(url))
    delete_redis_queue(url, queue)
    with using_broker(url):
        worker = CeleryWorker(
            broker_url=url,
            log_path=worker_logs / "oscar-redis-worker.log",
            queue=queue,
            settings_module="tests.oscar.settings_e2e",
            env={
                "PRODCAT_E2E_RUN_ID": settings.PRODCAT_E2E_RUN_ID,
                "PRODCAT_E2E_DB_NAME": test_db_name,
                "PRODCAT_E2E_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            },
        )
        worker.start(ready_timeout=90)
        try:
            yield worker
        finally:
            worker.stop()
            delete_redis_queue(url, queue)


@pytest.fixture
def media_root() -> str:
    """Not a per-test folder here: the worker reads the images from the run's MEDIA_ROOT."""
    return settings.MEDIA_ROOT
