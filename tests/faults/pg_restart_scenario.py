"""PostgreSQL restarted mid-task, on a private cluster: run by ``test_postgres_restart``.

Runs in its own process because Django's database settings must point at the private
cluster before Django starts: ``python -m tests.faults.pg_restart_scenario --redis URL
--checkpoint DIR --logs DIR``. It makes the cluster (initdb), migrates, queues products whose
pass takes half a second, restarts PostgreSQL (fast shutdown, the clients cut off) while a pass is
in flight, and prints one ``RESULT {json}`` line: how many finished, failed, stayed open, and
how long after the restart the last one finished. Everything it started is stopped by pid.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

PG_PORT = int(os.environ.get("PRODCAT_FAULTS_PG_PORT", "5441"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--logs", required=True)
    parser.add_argument("--products", type=int, default=12)
    args = parser.parse_args()
    logs = Path(args.logs)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings_faults",
            "PRODCAT_E2E_PGPORT": str(PG_PORT),
            "PRODCAT_E2E_DB_NAME": "postgres",
            "PRODCAT_E2E_BROKER_URL": args.redis,
            "PRODCAT_E2E_CHECKPOINT": args.checkpoint,
            "PRODCAT_E2E_RUN_ID": f"pg{os.getpid()}",
        }
    )
    from tests.faults.rig import PrivatePostgres

    pg = PrivatePostgres(PG_PORT, logs / "private-postgres.log")
    pg.init()
    pg.start()
    try:
        return run(pg, args, logs)
    finally:
        pg.destroy()


def run(pg, args, logs: Path) -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import OperationalError, connections

    from prodcat_django import services
    from prodcat_django.models import CategorySuggestion
    from tests.e2e.harness import using_broker
    from tests.faults.rig import Beat, make_worker
    from tests.testapp.models import Product

    call_command("migrate", verbosity=0)
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": False}
    with using_broker(args.redis):
        worker = make_worker(args.redis, "postgres", logs / "pg-worker.log", Path(args.checkpoint))
        beat = Beat(args.redis, logs / "pg-beat.log", logs)
        worker.start(ready_timeout=90)
        beat.start()
        try:
            products = [
                Product.objects.create(title=f"SLOW coat {i}") for i in range(args.products)
            ]
            batch = services.request_suggestions(
                Product.objects.filter(pk__in=[p.pk for p in products]), chunk_size=4
            )
            ids = list(CategorySuggestion.objects.filter(batch=batch).values_list("pk", flat=True))
            deadline = time.monotonic() + 60
            while not CategorySuggestion.objects.filter(pk__in=ids, in_flight=True).exists():
                if time.monotonic() > deadline:
                    raise SystemExit("no pass started:\n" + worker.log_tail())
                time.sleep(0.05)
            connections.close_all()
            restarted = time.monotonic()
            pg.stop()
            down_s = 2.0  # an outage, not just a blip: the worker's writes fail meanwhile
            time.sleep(down_s)
            pg.start()
            counts: dict[str, int] = {}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    rows = list(CategorySuggestion.objects.filter(pk__in=ids))
                except OperationalError:
                    connections.close_all()
                    time.sleep(0.5)
                    continue
                counts = {}
                for row in rows:
                    counts[row.status] = counts.get(row.status, 0) + 1
                if counts.get("pending", 0) + counts.get("running", 0) == 0:
                    break
                time.sleep(0.3)
            took = round(time.monotonic() - restarted, 1)
            errors = sorted(
                {
                    row.error
                    for row in CategorySuggestion.objects.filter(pk__in=ids, status="failed")
                }
            )
            result = {
                "products": len(ids),
                "counts": counts,
                "down_s": down_s,
                "recover_s": took,
                "errors": errors,
                "db_retries_logged": worker.log_text().count("database error in task"),
            }
        finally:
            beat.stop()
            worker.stop()
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
