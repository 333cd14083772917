"""Fault-injection fixtures: a private Redis (started, killed, frozen and restarted by the
tests, stopped by pid), the worker on it with the misbehaving-input app, and beat running the
sweep. Run with ``pytest -m faults --ds=tests.settings_faults``; under ``CI=true`` a missing
service fails the run.
"""

# The e2e fixtures are imported to be reused as fixtures here, so their names recur.
# ruff: noqa: F811

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.e2e.conftest import (  # noqa: F401  (fixtures reused by this suite)
    _e2e_media_cleanup,
    django_db_setup,
    e2e_settings,
    postgres,
    require,
    test_db_name,
    worker_logs,
)
from tests.e2e.harness import CeleryWorker, delete_amqp_queue, probe_amqp, using_broker
from tests.faults.rig import Beat, PrivateRedis, make_worker

#: This suite's private Redis port (loopback only).
REDIS_PORT = int(os.environ.get("PRODCAT_FAULTS_REDIS_PORT", "6401"))


@pytest.fixture(scope="session")
def fault_settings(e2e_settings: None) -> None:
    if getattr(settings, "PRODCAT_FAULTS", False) is not True:
        pytest.skip("fault-injection tests run with: pytest -m faults --ds=tests.settings_faults")


@pytest.fixture(scope="session")
def private_redis(fault_settings: None, worker_logs: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(REDIS_PORT, worker_logs / "private-redis.log")
    redis.start()
    try:
        yield redis
    finally:
        redis.thaw() if redis.process and redis.process.poll() is None else None
        redis.kill()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from prodcat_django.ml.testing import build_random_checkpoint

    return build_random_checkpoint(
        tmp_path_factory.mktemp("fault-ckpt"), ("Shirts", "Shoes", "Watches", "Bags")
    )


@dataclass
class Rig:
    """One broker's worker and beat, as the tests drive them."""

    broker_url: str
    worker: CeleryWorker
    beat: Beat
    redis: PrivateRedis | None = None


def _rig(
    url: str, db_name: str, logs: Path, checkpoint: Path, name: str, redis: Any = None
) -> Iterator[Rig]:
    with using_broker(url):
        worker = make_worker(url, db_name, logs / f"{name}-worker.log", checkpoint)
        beat = Beat(url, logs / f"{name}-beat.log", logs)
        worker.start(ready_timeout=90)
        beat.start()
        try:
            yield Rig(url, worker, beat, redis)
        finally:
            beat.stop()
            worker.stop()


@pytest.fixture
def redis_rig(
    private_redis: PrivateRedis,
    test_db_name: str,
    worker_logs: Path,
    tiny_checkpoint: Path,
    settings: Any,
) -> Iterator[Rig]:
    # Saving queues nothing: each test queues its products itself (the bulk path).
    settings.PRODCAT = {
        **settings.PRODCAT,
        "CHECKPOINT": str(tiny_checkpoint),
        "AUTO_SUGGEST": False,
    }
    yield from _rig(
        private_redis.url, test_db_name, worker_logs, tiny_checkpoint, "redis", private_redis
    )


@pytest.fixture
def amqp_rig(
    fault_settings: None,
    test_db_name: str,
    worker_logs: Path,
    tiny_checkpoint: Path,
    settings: Any,
) -> Iterator[Rig]:
    """The shared RabbitMQ, on this run's own queue (deleted at the end)."""
    url = settings.PRODCAT_E2E_AMQP_URL
    require(probe_amqp(url))
    settings.PRODCAT = {
        **settings.PRODCAT,
        "CHECKPOINT": str(tiny_checkpoint),
        "AUTO_SUGGEST": False,
    }
    queue = settings.PRODCAT["QUEUE"]
    delete_amqp_queue(url, queue)
    try:
        yield from _rig(url, test_db_name, worker_logs, tiny_checkpoint, "amqp")
    finally:
        delete_amqp_queue(url, queue)


def elapsed_since(start: float) -> float:
    return round(time.monotonic() - start, 1)
