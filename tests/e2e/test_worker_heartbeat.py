"""The worker's heartbeat with a real Celery worker (PostgreSQL, Redis): an idle worker keeps
the admin's "no worker" warning away; killing it brings the warning back once its heartbeat
is older than WORKER_LOST_AFTER, and stopping it cleanly brings it back at once.

The session's worker is the one stopped; it is started again before the test ends, so the
tests after this one still have it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse

from prodcat_django.models import WorkerHealth
from tests.e2e.harness import CeleryWorker, wait_until

pytestmark = pytest.mark.e2e

NO_WORKER = "No worker is taking category suggestions"


def _pages(product_pk: int) -> list[str]:
    return [
        reverse("admin:index"),
        reverse("admin:prodcat_django_categorysuggestion_changelist"),
        reverse("admin:testapp_product_change", args=[product_pk]),
    ]


def _warned(client: Any, url: str) -> bool:
    response = client.get(url)
    assert response.status_code == 200, url
    return NO_WORKER in response.content.decode()


def _beats(hostname_prefix: str) -> Any:
    row = WorkerHealth.objects.filter(hostname__startswith=hostname_prefix).first()
    return None if row is None else row.updated_at


def test_an_idle_worker_keeps_the_warning_away_and_its_end_brings_it_back(
    redis_worker: CeleryWorker, admin_client_e2e: Any, no_auto_suggest: None
) -> None:
    from tests.testapp.models import Product

    interval = float(settings.PRODCAT["WORKER_HEARTBEAT"])
    lost_after = float(settings.PRODCAT["WORKER_LOST_AFTER"])
    product = Product.objects.create(title="Idle shop's boots", price=10)
    prefix = redis_worker.hostname.split("@")[0] + "@"
    log = redis_worker.log_tail
    try:
        # Idle: no task reaches the worker, yet its row keeps moving, beat after beat.
        first = wait_until(
            lambda: _beats(prefix),
            bool,
            timeout=4 * interval,
            what="a first heartbeat",
            on_timeout=log,
        )
        wait_until(
            lambda: _beats(prefix),
            lambda seen: seen > first,
            timeout=4 * interval,
            what="a second heartbeat",
            on_timeout=log,
        )
        for url in _pages(product.pk):
            assert not _warned(admin_client_e2e, url), url

        # Killed outright (no shutdown handler runs): the row stays and goes stale.
        os.killpg(redis_worker.process.pid, signal.SIGKILL)
        redis_worker.process.wait(timeout=10)
        killed = time.monotonic()
        assert WorkerHealth.objects.filter(hostname__startswith=prefix).exists()
        url = reverse("admin:prodcat_django_categorysuggestion_changelist")
        wait_until(
            lambda: _warned(admin_client_e2e, url),
            bool,
            timeout=lost_after + 4 * interval,
            what="the no-worker warning after a kill",
        )
        assert time.monotonic() - killed >= lost_after - 2 * interval  # not before it is due
        for url in _pages(product.pk):
            html = admin_client_e2e.get(url).content.decode()
            assert NO_WORKER in html
            assert f"worker -Q {settings.PRODCAT['QUEUE']}" in html  # what to start

        # Started again: the warning goes within a beat.
        redis_worker.start(ready_timeout=90)
        wait_until(
            lambda: _warned(admin_client_e2e, url),
            lambda warned: not warned,
            timeout=4 * interval,
            what="the warning to go once the worker runs",
            on_timeout=log,
        )

        # Stopped cleanly: it removes its row, the warning is back at once.
        redis_worker.stop()
        assert not WorkerHealth.objects.filter(hostname__startswith=prefix).exists()
        assert _warned(admin_client_e2e, url)
    finally:
        if redis_worker.process is None or redis_worker.process.poll() is not None:
            redis_worker.start(ready_timeout=90)
