"""One fresh web process, for figures (7) and (9): ``python -m benchmarks.web_probe MODE``.

``rss``: set Django up, serve one admin page, print the process's RSS and whether torch got
imported. ``suggest``: time the first ``POST suggest/`` (and, with ``PRODCAT_BENCH_WARM_UP_WEB=1``,
wait for the start-up warm-up first and say how long it took). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time

STARTED = time.perf_counter()


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(mode: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from django.test import Client

    setup_s = time.perf_counter() - STARTED
    result: dict[str, object] = {"setup_s": setup_s}
    if mode == "rss":
        status = Client().get("/admin/login/").status_code
        result.update(status=status, rss_mib=rss_mib(), torch_imported="torch" in sys.modules)
    else:
        from django.contrib.auth.models import User
        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.urls import reverse
        from rest_framework.test import APIClient

        from benchmarks.data import products

        warm = os.environ.get("PRODCAT_BENCH_WARM_UP_WEB") == "1"
        if warm:
            from prodcat_django import services

            waiter = getattr(services, "wait_for_warm_up", None)
            if waiter is None:
                result["warm_up"] = "not supported by this version"
            else:
                start = time.perf_counter()
                waiter(timeout=300)
                result["warm_up_wait_s"] = time.perf_counter() - start
        result["torch_imported_before_request"] = "torch" in sys.modules
        product = products(1)[0][0]
        client = APIClient()
        client.force_authenticate(User(username="bench", is_active=True, is_superuser=True))
        data = {
            "title": product.title,
            "image": SimpleUploadedFile("p.jpg", product.image, content_type="image/jpeg"),
        }
        start = time.perf_counter()
        response = client.post(reverse("prodcat_api:suggest"), data, format="multipart")
        result["first_request_s"] = time.perf_counter() - start
        result["status"] = response.status_code
        result["since_process_start_s"] = time.perf_counter() - STARTED
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "rss")
