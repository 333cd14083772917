"""Cost of the neighbour index at 100k products, on PostgreSQL (the portable backend).

    .venv/bin/python benchmarks/neighbour_index.py [--products 100000] [--categories 500]
        [--dim 1664] [--queries 200]

Creates a throwaway database on the PostgreSQL of ``PRODCAT_E2E_PG*`` (default 127.0.0.1:5432,
user postgres), migrates it, writes ``--products`` vectors (float16 bytes, one category each,
in chunks of 5,000 through ``index.store.put_entries``) plus one name vector per category, then
measures what a worker pays:

- the first load of the matrix into a fresh process-side index (``PortableIndex.refresh``) and
  the build of its ``NeighbourHead``; the resident memory they add;
- the check before each task when nothing changed (one indexed read of the counter row);
- one decision arriving (a write, then the refresh that applies it and rebuilds the head);
- per-query lookup: the head's scores and ``merge`` with 16 model labels, p50 and p99.

The vectors are synthetic (category centres plus noise, both halves L2-normalised as in the
pooled space of ``ml/knn.py``): the cost depends on the sizes, not on what the vectors mean.
A script, not a test: no timed asserts; the numbers depend on the machine and its load. The
database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--categories", type=int, default=500)
    parser.add_argument(
        "--dim", type=int, default=1664, help="384 (MiniLM) + 1280 (EfficientNet-Lite0 GAP)"
    )
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    import psycopg

    name = f"prodcat_bench_{os.getpid()}"
    conninfo = dict(
        host=os.environ.get("PRODCAT_E2E_PGHOST", "127.0.0.1"),
        port=os.environ.get("PRODCAT_E2E_PGPORT", "5432"),
        user=os.environ.get("PRODCAT_E2E_PGUSER", "postgres"),
        password=os.environ.get("PRODCAT_E2E_PGPASSWORD", ""),
        dbname="postgres",
        autocommit=True,
    )
    with psycopg.connect(**conninfo) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        os.environ["PRODCAT_E2E_DB_NAME"] = name
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_e2e")
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(**conninfo) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    import numpy as np
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command

    from prodcat_django.index import PortableIndex, VectorEntry, put_entries, put_object
    from prodcat_django.index.store import current_revision
    from prodcat_django.ml.knn import l2_rows

    call_command("migrate", verbosity=0)
    from tests.testapp.models import Category, Product

    product_ct = ContentType.objects.get_for_model(Product).pk
    category_ct = ContentType.objects.get_for_model(Category).pk
    rng = np.random.default_rng(0)
    text_dim = 384 if args.dim > 384 else args.dim // 2

    def halves(x: np.ndarray) -> np.ndarray:
        text, image = l2_rows(x[:, :text_dim]), l2_rows(x[:, text_dim:])
        return np.concatenate([text, image], axis=1) * np.float32(np.sqrt(0.5))

    centres = rng.standard_normal((args.categories, args.dim)).astype(np.float32)
    print(
        f"neighbour index benchmark: {args.products:,} products, {args.categories} categories, "
        f"{args.dim} dimensions (float16 in the database: {args.dim * 2:,} bytes a vector), "
        "PostgreSQL"
    )

    started = time.perf_counter()
    chunk = 5000
    for start in range(0, args.products, chunk):
        n = min(chunk, args.products - start)
        cats = rng.integers(0, args.categories, n)
        vectors = halves(
            centres[cats] + 1.5 * rng.standard_normal((n, args.dim)).astype(np.float32)
        )
        put_entries(
            [
                VectorEntry(
                    product_ct, str(start + i), category_ct, str(c), "catalogue", v, "bench"
                )
                for i, (c, v) in enumerate(zip(cats, vectors, strict=True))
            ]
        )
    names = halves(centres + 3.0 * rng.standard_normal(centres.shape).astype(np.float32))
    names[:, text_dim:] = 0.0  # a name has no photo half
    put_entries(
        [
            VectorEntry(category_ct, str(c), category_ct, str(c), "name", names[c], "bench")
            for c in range(args.categories)
        ]
    )
    write_s = time.perf_counter() - started
    print(f"write {args.products:,} vectors + names (5,000 a transaction): {write_s:.1f} s")

    before = rss_mib()
    index = PortableIndex("bench", category_ct)
    started = time.perf_counter()
    loaded = index.refresh()
    load_s = time.perf_counter() - started
    after_load = rss_mib()
    started = time.perf_counter()
    head = index.head()
    build_s = time.perf_counter() - started
    after_head = rss_mib()
    print(
        f"first load into a worker: {load_s:.2f} s for {loaded:,} rows "
        f"(+{after_load - before:.0f} MiB resident: the float16 matrix)"
    )
    print(
        f"head build (NeighbourHead, float32): {build_s:.2f} s "
        f"(+{after_head - after_load:.0f} MiB resident)"
    )
    print(f"resident memory of the worker process now: {after_head:.0f} MiB")

    checks = []
    for _ in range(50):
        started = time.perf_counter()
        index.refresh()
        checks.append(time.perf_counter() - started)
    print(
        f"check before a task, nothing changed: p50 {1000 * statistics.median(checks):.2f} ms, "
        f"p99 {1000 * percentile(checks, 0.99):.2f} ms"
    )

    vector = halves(centres[:1] + 1.5 * rng.standard_normal((1, args.dim)).astype(np.float32))[0]
    started = time.perf_counter()
    put_object(
        product_ct,
        "decided",
        [VectorEntry(product_ct, "decided", category_ct, "0", "accepted", vector, "bench")],
    )
    write_one_s = time.perf_counter() - started
    started = time.perf_counter()
    applied = index.refresh()
    refresh_s = time.perf_counter() - started
    started = time.perf_counter()
    head = index.head()
    rebuild_s = time.perf_counter() - started
    print(
        f"one decision: write {1000 * write_one_s:.1f} ms; next task's refresh "
        f"{1000 * refresh_s:.1f} ms ({applied} row), head rebuild {rebuild_s:.2f} s "
        f"(revision {current_revision()})"
    )

    cats = rng.integers(0, args.categories, args.queries)
    queries = halves(
        centres[cats] + 1.5 * rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    )
    model_keys = {f"label{i}": str(i) for i in range(16)}  # the model covers 16 categories
    model_labels = [(f"label{i}", 1.0 / 16) for i in range(3)]
    times, hits = [], 0
    for cat, query in zip(cats, queries, strict=True):
        started = time.perf_counter()
        scores = head.scores(query[None, :])[0]
        ranked = head.merge(model_labels, scores, model_keys)
        times.append(time.perf_counter() - started)
        hits += ranked[0].key == str(cat)
    print(
        f"lookup (scores + merge, one product): p50 {1000 * statistics.median(times):.1f} ms, "
        f"p99 {1000 * percentile(times, 0.99):.1f} ms over {args.queries} queries; "
        f"top-1 is the query's category for {hits}/{args.queries}"
    )


if __name__ == "__main__":
    main()
