"""``python -m benchmarks [--quick] [--json PATH]``: every performance figure in one run.

Same products for every figure (fashion16 test where ``../shared/datasets`` has it, else
drawn), medians over interleaved repeats. Figures (docs/performance.md):

1. the bare encoders' forward pass on pre-decoded tensors, batched (and a batch-size sweep);
2. ``Predictor.predict`` from JPEG bytes, ratio to (1);
3. the bulk path through a real Celery worker on PostgreSQL and Redis, ratio to (1);
4. the seed's architecture (BERT-base + ResNet18 from configs, random weights): per product
   at batch 32 and 1, ours as a fraction;
5. ``suggest/`` p50/p99 at 1 and 4 concurrent clients;
6. one worker process of two threads against two of one;
7. worker RSS with the model loaded; web RSS with and without the app, torch imported or not;
8. unchanged saves: model calls and cost against a save without the app;
9. first result after a worker starts; first ``suggest/`` after a web process starts.

Needs PostgreSQL and Redis for (3), (6), (8) and the worker part of (7) and (9)
(``PRODCAT_BENCH_PG*``, ``PRODCAT_BENCH_REDIS_URL``); without them those figures say
``skipped`` and why. ``--quick`` (a few dozen products, one repeat) is what CI runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="few products, one repeat (CI)")
    parser.add_argument("--products", type=int, help="products (default 256, quick 24)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 3, quick 1)")
    parser.add_argument("--saves", type=int, help="unchanged saves (default 1000, quick 100)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in this process")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument(
        "--only", default="", help="comma-separated figure numbers to run (default: all)"
    )
    parser.add_argument(
        "--backend",
        default="",
        help="encoder backend(s) for figures 1, 2 and 4: auto, torch or onnx, or a comma list "
        "(torch,onnx) measured interleaved in one run, the first one also in the worker and "
        "web figures (default: PRODCAT_ENCODER_BACKEND, else auto)",
    )
    return parser.parse_args(argv)


def services_available() -> tuple[bool, bool, str]:
    from tests.e2e.harness import probe_postgres, probe_redis

    pg = probe_postgres(
        os.environ.get("PRODCAT_BENCH_PGHOST", "127.0.0.1"),
        int(os.environ.get("PRODCAT_BENCH_PGPORT", "5432")),
        os.environ.get("PRODCAT_BENCH_PGUSER", "postgres"),
        os.environ.get("PRODCAT_BENCH_PGPASSWORD"),
    )
    redis = probe_redis(os.environ.get("PRODCAT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    why = "; ".join(f"{p.name}: {p.error}" for p in (pg, redis) if p.error)
    return pg.error is None, redis.error is None, why


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(
        host=os.environ.get("PRODCAT_BENCH_PGHOST", "127.0.0.1"),
        port=int(os.environ.get("PRODCAT_BENCH_PGPORT", "5432")),
        user=os.environ.get("PRODCAT_BENCH_PGUSER", "postgres"),
        password=os.environ.get("PRODCAT_BENCH_PGPASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(sql)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    n = args.products or (24 if args.quick else 256)
    repeats = args.repeats or (1 if args.quick else 3)
    saves = args.saves or (100 if args.quick else 1000)
    only = {int(x) for x in args.only.split(",") if x.strip()}

    def want(fig: int) -> bool:
        return not only or fig in only

    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    if backends:  # the worker and web processes inherit the first
        os.environ["PRODCAT_ENCODER_BACKEND"] = backends[0]
    run_id = f"{os.getpid()}"
    media = tempfile.mkdtemp(prefix="prodcat-bench-media-")
    pg_ok, redis_ok, why = services_available()
    env = {
        "PRODCAT_BENCH_RUN_ID": run_id,
        "PRODCAT_BENCH_MEDIA_ROOT": media,
        "PRODCAT_BENCH_DB_NAME": f"prodcat_bench_{run_id}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if not pg_ok:
        env["PRODCAT_BENCH_DB"] = "sqlite"
        env["PRODCAT_BENCH_DB_NAME"] = os.path.join(media, "bench.db")
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    if pg_ok:
        _pg_admin(f'CREATE DATABASE "prodcat_bench_{run_id}"')
    logs = Path(tempfile.mkdtemp(prefix="prodcat-bench-logs-"))
    result: dict[str, Any] = {
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_before": os.getloadavg(),
        },
        "products": n,
        "repeats": repeats,
        "figures": {},
    }
    try:
        run(args, n, repeats, saves, want, env, pg_ok and redis_ok, why, logs, result)
    finally:
        result["machine"]["load_after"] = os.getloadavg()
        from django.db import connections

        connections.close_all()
        if pg_ok:
            _pg_admin(f'DROP DATABASE IF EXISTS "prodcat_bench_{run_id}" WITH (FORCE)')
        if redis_ok:
            from django.conf import settings

            from tests.e2e.harness import delete_redis_queue

            delete_redis_queue(settings.CELERY_BROKER_URL, settings.PRODCAT["QUEUE"])
        shutil.rmtree(media, ignore_errors=True)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"JSON: {args.json}")
    return result


def run(
    args: argparse.Namespace,
    n: int,
    repeats: int,
    saves: int,
    want: Any,
    env: dict[str, str],
    services: bool,
    why: str,
    logs: Path,
    result: dict[str, Any],
) -> None:
    import django

    django.setup()
    import torch
    from django.core.management import call_command

    from benchmarks import model, stack
    from benchmarks.data import products as make_products
    from prodcat_django.classifier import get_predictor

    torch.set_num_threads(args.threads)
    call_command("migrate", verbosity=0)
    figures = result["figures"]
    items, source = make_products(n)
    result["source"] = source
    started = time.perf_counter()
    predictor = get_predictor()
    result["model"] = {
        "name": predictor.info.name,
        "version": predictor.info.version,
        "load_s_in_benchmark_process": time.perf_counter() - started,
        "threads": args.threads,
    }
    inputs = model.Inputs(predictor, items)
    text_batch = int(getattr(predictor, "text_batch_size", 32))
    image_batch = int(getattr(predictor, "image_batch_size", 32))
    # One predictor per backend, sharing the model: figures 1, 2 and 4 for each, interleaved.
    backends = [b.strip() for b in args.backend.split(",") if b.strip()] or ["default"]
    predictors = {backends[0]: predictor}  # get_predictor's: PRODCAT_ENCODER_BACKEND, set above
    for name in backends[1:]:
        predictors.setdefault(name, _with_backend(predictor, name))
    result["model"]["backends"] = {k: _backend_name(p) for k, p in predictors.items()}
    for p in predictors.values():
        p.predict([], batch_size=1)  # nothing; keeps the lazy paths honest
        model.predict_from_bytes(p, items[:4], 4)  # warm-up
    seed = model.Seed() if want(4) else None
    sweep_images = [1, 8, 32] if args.quick else [1, 4, 8, 32]
    sweep_texts = [32] if args.quick else [32, 128]
    raw: dict[str, dict[str, list[float]]] = {k: {} for k in predictors}

    small = min(n, 8 if args.quick else 16)  # batch-1 figures: fewer products
    for r in range(repeats):  # interleaved: every in-process figure once per repeat
        order = list(predictors.items())
        for name, pred in order if r % 2 == 0 else order[::-1]:  # backends alternate too

            def add(key: str, value: float, name: str = name) -> None:
                raw[name].setdefault(key, []).append(value)

            if want(1) or want(2):
                add("text_s", model.bare_text(pred, inputs, text_batch))
                add("image_s", model.bare_image(pred, inputs, image_batch))
                for b in sweep_images:
                    add(f"image_b{b}_s", model.bare_image(pred, inputs, b))
                for b in sweep_texts:
                    add(f"text_b{b}_s", model.bare_text(pred, inputs, b))
            if want(2):
                add("predict_b32_s", model.predict_from_bytes(pred, items, 32))
                add("predict_b1_s", model.predict_from_bytes(pred, items[:small], 1))
            if seed is not None:
                add("ours_b32", model.ours_bare(pred, inputs, 32, 32))
                add("ours_b1", model.ours_bare(pred, inputs, 1, small))
        if seed is not None:  # once per repeat: every backend's fraction is of the same seed
            seed_b32, seed_b1 = seed.run(inputs, 32, 32), seed.run(inputs, 1, small)
            for got in raw.values():
                got.setdefault("seed_b32", []).append(seed_b32)
                got.setdefault("seed_b1", []).append(seed_b1)
    by_backend = {
        name: _model_figures(
            {k: median(v) for k, v in got.items()},
            n,
            small,
            text_batch,
            image_batch,
            sweep_images,
            sweep_texts,
        )
        for name, got in raw.items()
    }
    figures.update(next(iter(by_backend.values())))
    if len(by_backend) > 1:
        result["by_backend"] = by_backend
    del seed

    rows = stack.create_products(items)
    skipped = {"skipped": f"needs PostgreSQL and Redis ({why})"}
    if services and (want(3) or want(6) or want(7) or want(9)):
        configs = [(1, 2), (2, 1)] if want(6) or not want(3) else [(1, 2)]
        runs: dict[str, list[dict[str, Any]]] = {}
        for r in range(repeats):
            for processes, threads in configs if r % 2 == 0 else configs[::-1]:
                log = logs / f"worker-{processes}x{threads}-{r}.log"
                runs.setdefault(f"{processes}x{threads}", []).append(
                    stack.worker_run(env, rows, processes, threads, log)
                )
        summary = {
            key: {
                "processes": got[0]["processes"],
                "threads": got[0]["threads"],
                "products_per_s": median([g["products_per_s"] for g in got]),
                "ready": [g["ready"] for g in got],
                "worker_rss_mib": max(g["worker_rss_mib"] for g in got),
                "launch_to_ready_s": median([g["launch_to_ready_s"] for g in got]),
                "first_result_after_ready_s": median(
                    [g["first_result_after_ready_s"] for g in got]
                ),
                "first_result_after_launch_s": median(
                    [g["first_result_after_launch_s"] for g in got]
                ),
            }
            for key, got in runs.items()
        }
        bare_rate = figures.get("1_bare_encoders", {}).get("products_per_s")
        one = summary["1x2"]
        figures["3_bulk_worker"] = {
            "products_per_s": one["products_per_s"],
            "ratio_to_1": one["products_per_s"] / bare_rate if bare_rate else None,
            "chunk_size": _setting("BULK_CHUNK_SIZE"),
            "task_batch_size": _setting("TASK_BATCH_SIZE"),
            "ready": one["ready"],
            "target": ">= 0.85",
        }
        if "2x1" in summary:
            two = summary["2x1"]
            figures["6_one_vs_two_processes"] = {
                "1x2_per_s": one["products_per_s"],
                "2x1_per_s": two["products_per_s"],
                "ratio_2x1_to_1x2": two["products_per_s"] / one["products_per_s"],
                "2x1_ratio_to_1": two["products_per_s"] / bare_rate if bare_rate else None,
            }
        worker_rss = max(s["worker_rss_mib"] for s in summary.values())
        figures["9_cold_start"] = {
            "worker_launch_to_ready_s": one["launch_to_ready_s"],
            "worker_first_result_after_ready_s": one["first_result_after_ready_s"],
            "worker_first_result_after_launch_s": one["first_result_after_launch_s"],
            # The same for every configuration run (processes x torch threads).
            "by_config": {
                key: {
                    "launch_to_ready_s": got["launch_to_ready_s"],
                    "first_result_after_ready_s": got["first_result_after_ready_s"],
                }
                for key, got in summary.items()
            },
            "target": "<= 3 s",
        }
        result["worker_runs"] = runs
    else:
        worker_rss = None
        for key in ("3_bulk_worker", "6_one_vs_two_processes", "9_cold_start"):
            figures[key] = dict(skipped) if not services else {"skipped": "not in --only"}
        if want(8):
            # The rows (8) needs: suggestions with fingerprints, run inline as --sync does.
            from prodcat_django import services as svc

            batch = svc.request_suggestions(type(rows[0])._default_manager.all(), send=False)
            from prodcat_django.models import CategorySuggestion

            svc.run_suggestions(
                list(CategorySuggestion.objects.filter(batch=batch).values_list("pk", flat=True))
            )

    if want(5):
        per_client = 8 if args.quick else 40
        # Clients repeat photos: the image-feature cache must not answer for them.
        cache_size = getattr(predictor, "image_cache_size", None)
        if cache_size is not None:
            predictor.image_cache_size = 0
            predictor.clear_image_cache()
        try:
            figures["5_suggest_latency"] = {
                str(c): stack.suggest_latency(items, c, per_client) for c in (1, 4)
            }
        finally:
            if cache_size is not None:
                predictor.image_cache_size = cache_size
        one, four = figures["5_suggest_latency"]["1"], figures["5_suggest_latency"]["4"]
        figures["5_suggest_latency"]["throughput_4_over_1"] = (
            four["requests_per_s"] / one["requests_per_s"]
        )

    if want(7):
        with_app = stack.probe("rss", env)
        without_app = stack.probe("rss", env, "benchmarks.settings_noapp")
        figures["7_memory"] = {
            "worker_rss_mib": worker_rss,
            "worker_target": "<= 1024 MiB",
            "web_rss_with_app_mib": with_app.get("rss_mib"),
            "web_rss_without_app_mib": without_app.get("rss_mib"),
            "web_app_costs_mib": (
                with_app["rss_mib"] - without_app["rss_mib"]
                if "rss_mib" in with_app and "rss_mib" in without_app
                else None
            ),
            "web_imports_torch": with_app.get("torch_imported"),
            "probe_errors": [p["error"] for p in (with_app, without_app) if "error" in p],
        }

    if want(8):
        figures["8_unchanged_saves"] = {
            **stack.unchanged_saves(rows, saves),
            "database": "postgresql" if env.get("PRODCAT_BENCH_DB") != "sqlite" else "sqlite",
            "target": "0 model calls, <= 1.2x",
        }

    if want(9):
        cold = figures.setdefault("9_cold_start", {})
        cold["web_first_suggest"] = stack.probe("suggest", env)
        cold["web_first_suggest_warmed"] = stack.probe(
            "suggest", {**env, "PRODCAT_BENCH_WARM_UP_WEB": "1"}
        )


def _backend_name(predictor: Any) -> str:
    """Which runtime runs this predictor's encoders ("onnx", "torch", or "image/text")."""
    image = getattr(predictor.image_encoder, "backend", "torch")
    text = getattr(predictor.text_encoder, "backend", "torch")
    return image if image == text else f"{image}/{text}"


def _with_backend(predictor: Any, backend: str) -> Any:
    """A predictor on the same model whose encoders ``backend`` runs."""
    from prodcat_django.ml.encoders import build_image_encoder, build_text_encoder
    from prodcat_django.ml.predictor import Predictor

    config, device = predictor.info.config, predictor.device
    return Predictor(
        predictor.model,
        predictor.info,
        build_text_encoder(config["text_encoder"], backend=backend, device=device).to(device),
        build_image_encoder(config["image_encoder"], backend=backend, device=device).to(device),
        device,
        predictor.ood,
    )


def _model_figures(
    med: dict[str, float],
    n: int,
    small: int,
    text_batch: int,
    image_batch: int,
    sweep_images: list[int],
    sweep_texts: list[int],
) -> dict[str, Any]:
    """Figures 1, 2 and 4 from one backend's medians."""
    figures: dict[str, Any] = {}
    if "text_s" in med:
        bare_s = med["text_s"] + med["image_s"]
        figures["1_bare_encoders"] = {
            "text_batch": text_batch,
            "image_batch": image_batch,
            "text_ms_per_product": 1000 * med["text_s"] / n,
            "image_ms_per_product": 1000 * med["image_s"] / n,
            "products_per_s": n / bare_s,
            "image_sweep_per_s": {b: n / med[f"image_b{b}_s"] for b in sweep_images},
            "text_sweep_per_s": {b: n / med[f"text_b{b}_s"] for b in sweep_texts},
        }
    if "predict_b32_s" in med:
        bare_rate = figures["1_bare_encoders"]["products_per_s"]
        rate = n / med["predict_b32_s"]
        figures["2_predict_from_bytes"] = {
            "batch_32_per_s": rate,
            "batch_1_per_s": small / med["predict_b1_s"],
            "ratio_to_1": rate / bare_rate,
            "target": ">= 0.9",
        }
    if "seed_b32" in med:
        figures["4_seed_architecture"] = {
            "seed_ms_per_product_b32": 1000 * med["seed_b32"],
            "seed_ms_per_product_b1": 1000 * med["seed_b1"],
            "ours_ms_per_product_b32": 1000 * med["ours_b32"],
            "ours_ms_per_product_b1": 1000 * med["ours_b1"],
            "fraction_b32": med["ours_b32"] / med["seed_b32"],
            "fraction_b1": med["ours_b1"] / med["seed_b1"],
            "target": "<= 0.2 at batch 32, <= 0.15 at batch 1",
        }
    return figures


def _setting(name: str) -> Any:
    from prodcat_django.conf import prodcat_settings

    return getattr(prodcat_settings, name)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def print_table(result: dict[str, Any]) -> None:
    machine = result["machine"]
    print(
        f"\n{result['command']}: {result['products']} products ({result.get('source')}), "
        f"{result['repeats']} repeat(s), {machine['cpus']} CPUs, load "
        f"{machine['load_before'][0]:.2f} before / "
        f"{machine.get('load_after', (0,))[0]:.2f} after"
    )
    print(f"{'figure':<28} {'measure':<38} value")
    for fig, values in result["figures"].items():
        for key, value in values.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items() if k != "errors")
            print(f"{fig:<28} {key:<38} {_fmt(value)}")
            fig = ""
    for backend, figures in result.get("by_backend", {}).items():
        for fig, values in figures.items():
            for key in (
                "image_sweep_per_s",
                "text_sweep_per_s",
                "products_per_s",
                "batch_32_per_s",
                "batch_1_per_s",
                "fraction_b32",
                "fraction_b1",
            ):
                if key in values:
                    value = values[key]
                    if isinstance(value, dict):
                        value = ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
                    print(f"{backend + ' ' + fig:<28} {key:<38} {_fmt(value)}")


if __name__ == "__main__":
    main()
