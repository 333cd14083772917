"""The figures through the Django stack: (3)/(6) the bulk path through real Celery workers,
(5) ``suggest/`` under concurrent clients, (7) RSS, (8) unchanged saves, (9) cold starts."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.data import REPO_ROOT, BenchProduct


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def create_products(products: list[BenchProduct]) -> list[Any]:
    from django.core.files.base import ContentFile
    from django.test import override_settings

    from tests.testapp.models import Product

    made = []
    with override_settings(PRODCAT={**_prodcat(), "AUTO_SUGGEST": False}):
        for i, p in enumerate(products):
            product = Product(title=p.title)
            product.image.save(f"bench{i}.jpg", ContentFile(p.image), save=False)
            product.save()
            made.append(product)
    return made


def _prodcat() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.PRODCAT)


def wait_batch(batch: Any, timeout: float) -> None:
    from prodcat_django.models import OPEN_STATUSES, CategorySuggestion

    deadline = time.monotonic() + timeout
    while CategorySuggestion.objects.filter(batch=batch, status__in=OPEN_STATUSES).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {batch.pk} not finished after {timeout:.0f} s")
        time.sleep(0.05)


def worker_rss_mib(worker: Any) -> float:
    best = 0.0
    for pid in worker.pool_pids():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return best


def start_worker(env: dict[str, str], processes: int, threads: int, log: Path) -> Any:
    from django.conf import settings

    from tests.e2e.harness import CeleryWorker

    worker = CeleryWorker(
        broker_url=settings.CELERY_BROKER_URL,
        log_path=log,
        queue=settings.PRODCAT["QUEUE"],
        concurrency=processes,
        settings_module="benchmarks.settings",
        env={**env, "OMP_NUM_THREADS": str(threads), "PRODCAT_THREADS": str(threads)},
    )
    worker.start(ready_timeout=180)
    return worker


def worker_run(
    env: dict[str, str], products: list[Any], processes: int, threads: int, log: Path
) -> dict[str, Any]:
    """Start a worker, time its first result, warm every process, time the bulk path."""
    from prodcat_django import services
    from prodcat_django.models import CategorySuggestion, SuggestionStatus

    launched = time.perf_counter()
    worker = start_worker(env, processes, threads, log)
    try:
        ready_s = time.perf_counter() - launched
        # (9): one product's suggestion sent as soon as the worker says it is ready.
        sent = time.perf_counter()
        first = services.request_suggestions(
            type(products[0])._default_manager.filter(pk=products[0].pk), label="first"
        )
        wait_batch(first, 600)
        first_s = time.perf_counter() - sent
        # Every pool process runs one small task before the timed run.
        warm = services.request_suggestions(
            type(products[0])._default_manager.filter(
                pk__in=[p.pk for p in products[1 : 1 + 2 * processes]]
            ),
            chunk_size=1,
            label="warm",
        )
        wait_batch(warm, 600)
        queryset = type(products[0])._default_manager.filter(pk__in=[p.pk for p in products])
        started = time.perf_counter()
        batch = services.request_suggestions(queryset, label="bulk")
        wait_batch(batch, 120 + 5 * len(products))
        seconds = time.perf_counter() - started
        ready = CategorySuggestion.objects.filter(batch=batch, status=SuggestionStatus.READY)
        return {
            "processes": processes,
            "threads": threads,
            "launch_to_ready_s": ready_s,
            "first_result_after_ready_s": first_s,
            "first_result_after_launch_s": ready_s + first_s,
            "bulk_s": seconds,
            "products_per_s": len(products) / seconds,
            "ready": ready.count(),
            "products": len(products),
            "worker_rss_mib": worker_rss_mib(worker),
        }
    finally:
        worker.stop()


def suggest_latency(products: list[BenchProduct], clients: int, per_client: int) -> dict[str, Any]:
    """``POST suggest/`` (title + photo) from ``clients`` threads, ``per_client`` requests each."""
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connections
    from django.urls import reverse
    from rest_framework.test import APIClient

    url = reverse("prodcat_api:suggest")
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        client = APIClient()
        client.force_authenticate(User(username="bench", is_active=True, is_superuser=True))
        try:
            for n in range(per_client):
                p = products[(offset * per_client + n) % len(products)]
                data = {
                    "title": p.title,
                    "image": SimpleUploadedFile("p.jpg", p.image, content_type="image/jpeg"),
                }
                start = time.perf_counter()
                response = client.post(url, data, format="multipart")
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status_code == 200:
                        times.append(elapsed)
                    else:
                        errors.append(f"HTTP {response.status_code}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(times),
        "errors": errors[:5],
        "p50_ms": 1000 * statistics.median(times) if times else None,
        "p99_ms": 1000 * percentile(times, 0.99) if times else None,
        "requests_per_s": len(times) / wall,
    }


def unchanged_saves(products: list[Any], saves: int, block: int = 50) -> dict[str, Any]:
    """(8): ``saves`` saves that change nothing, with the app's receiver and without it
    (disconnected), interleaved in blocks; model calls = suggestions created + tasks sent +
    forward passes in this process. The products are loaded from the database first, as a
    view or a script would have them."""
    model = type(products[0])
    products = list(model._default_manager.filter(pk__in=[p.pk for p in products]).order_by("pk"))
    from django.db.models.signals import post_save

    from prodcat_django import signals
    from prodcat_django.ml.predictor import Predictor
    from prodcat_django.models import CategorySuggestion
    from prodcat_django.services import dispatching

    calls = {"tasks": 0, "passes": 0}
    real_dispatch, real_predict, real_explain = (
        dispatching.dispatch,
        Predictor.predict,
        Predictor.explain_many,
    )

    def counting_dispatch(*a: Any, **kw: Any) -> Any:
        calls["tasks"] += 1
        return real_dispatch(*a, **kw)

    def counting(real: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            calls["passes"] += 1
            return real(*a, **kw)

        return wrapper

    dispatching.dispatch = counting_dispatch
    Predictor.predict, Predictor.explain_many = counting(real_predict), counting(real_explain)
    rows_before = CategorySuggestion.objects.count()
    with_app: list[float] = []
    without_app: list[float] = []
    try:
        for start in range(0, saves, block):
            n = min(block, saves - start)
            for connected, sink in ((True, with_app), (False, without_app)):
                if not connected:
                    post_save.disconnect(dispatch_uid="prodcat_django.product_saved")
                try:
                    for i in range(n):
                        product = products[(start + i) % len(products)]
                        t = time.perf_counter()
                        product.save()
                        sink.append(time.perf_counter() - t)
                finally:
                    if not connected:
                        signals.connect()
    finally:
        dispatching.dispatch = real_dispatch
        Predictor.predict, Predictor.explain_many = real_predict, real_explain
    created = CategorySuggestion.objects.count() - rows_before
    with_ms, without_ms = 1000 * statistics.median(with_app), 1000 * statistics.median(without_app)
    return {
        "saves": saves,
        "model_calls": created + calls["tasks"] + calls["passes"],
        "suggestions_created": created,
        "tasks_sent": calls["tasks"],
        "forward_passes": calls["passes"],
        "with_app_ms": with_ms,
        "without_app_ms": without_ms,
        "ratio": with_ms / without_ms,
    }


def probe(mode: str, env: dict[str, str], settings_module: str = "benchmarks.settings") -> Any:
    full = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": settings_module}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), full.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.web_probe", mode],
        cwd=REPO_ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr or out.stdout)[-800:]}
    return json.loads(lines[-1])
