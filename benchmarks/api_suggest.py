"""Latency of the synchronous ``POST suggest/`` endpoint, through the whole Django/DRF stack.

    .venv/bin/python benchmarks/api_suggest.py [--checkpoint DIR] [--requests 30] [--threads 2]

Sends multipart requests (a title and a drawn 320x320 JPEG, ~10 KB) through DRF's test client
(no network, so this is the web process's own cost: parsing, upload checks, decoding, the
model, rendering). Reports the first request (which loads the model in the process) and the
median / 95th percentile of the following ones, for title-only, image-only and both. A script,
not a test: the numbers depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def photo(n: int) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 320), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((60 + n % 40, 50, 260, 280 - n % 50), fill=(20 * (n % 12), 70, 140))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped one")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per input kind")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse
    from rest_framework.test import APIClient

    settings.PRODCAT = {
        **settings.PRODCAT,
        "CHECKPOINT": str(args.checkpoint) if args.checkpoint else None,
        "API_THROTTLE_RATE": None,  # measure the endpoint, not the limiter
    }
    import torch

    torch.set_num_threads(args.threads)

    # An unsaved active superuser passes the permission checks without a database.
    client = APIClient()
    client.force_authenticate(User(username="bench", is_active=True, is_superuser=True))
    url = reverse("prodcat_api:suggest")

    def post(n: int, kind: str) -> float:
        data: dict[str, object] = {}
        if kind in ("title", "both"):
            data["title"] = f"Roadster Men Navy Blue Checked Casual Shirt {n}"
        if kind in ("image", "both"):
            data["image"] = SimpleUploadedFile("p.jpg", photo(n), content_type="image/jpeg")
        start = time.perf_counter()
        response = client.post(url, data, format="multipart")
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"{kind}: HTTP {response.status_code}: {response.content[:300]!r}")
        return elapsed

    first = post(0, "both")
    body = client.post(url, {"title": "Nike"}, format="multipart").json()
    print(f"model: {body['model']['name']} {body['model']['version']}  threads: {args.threads}")
    print(f"first request (loads the model): {first * 1000:.0f} ms")
    print(f"{'input':<8} {'n':>4} {'median ms':>10} {'p95 ms':>8}")
    medians = {}
    for kind in ("title", "image", "both"):
        post(1, kind)  # warm this path
        times = [post(n, kind) for n in range(args.requests)]
        medians[kind] = statistics.median(times)
        print(
            f"{kind:<8} {len(times):>4} {medians[kind] * 1000:>10.1f} "
            f"{percentile(times, 0.95) * 1000:>8.1f}"
        )

    # What the endpoint adds around the service call (multipart parsing, auth, permission and
    # throttle checks, rendering), per request: total time minus time inside services.suggest.
    from prodcat_django import services

    inner: list[float] = []
    real_suggest = services.suggest

    def timed_suggest(*a: object, **kw: object) -> object:
        start = time.perf_counter()
        try:
            return real_suggest(*a, **kw)
        finally:
            inner.append(time.perf_counter() - start)

    services.suggest = timed_suggest
    try:
        overheads = [post(n, "both") - inner[-1] for n in range(args.requests)]
    finally:
        services.suggest = real_suggest
    median, p95 = statistics.median(overheads) * 1000, percentile(overheads, 0.95) * 1000
    print(f"endpoint overhead around services.suggest: median {median:.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
