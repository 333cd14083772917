"""``python -m benchmarks --quick`` runs end to end, so the benchmark cannot rot. Timings
are not asserted (they depend on the machine); the JSON's structure is, and that unchanged
saves made no model call."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "1_bare_encoders": ["products_per_s", "image_sweep_per_s", "text_sweep_per_s"],
    "2_predict_from_bytes": ["batch_32_per_s", "batch_1_per_s", "ratio_to_1"],
    "3_bulk_worker": ["products_per_s", "ratio_to_1", "chunk_size"],
    "4_seed_architecture": ["fraction_b32", "fraction_b1"],
    "5_suggest_latency": ["1", "4", "throughput_4_over_1"],
    "6_one_vs_two_processes": ["1x2_per_s", "2x1_per_s", "ratio_2x1_to_1x2"],
    "7_memory": ["web_rss_with_app_mib", "web_rss_without_app_mib", "web_imports_torch"],
    "8_unchanged_saves": ["model_calls", "with_app_ms", "without_app_ms", "ratio"],
    "9_cold_start": ["web_first_suggest", "web_first_suggest_warmed"],
}


@pytest.mark.slow
def test_quick_benchmark_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["products"] == 24 and result["repeats"] == 1
    figures = result["figures"]
    assert set(FIGURES) <= set(figures)
    for name, keys in FIGURES.items():
        if "skipped" in figures[name]:  # no PostgreSQL/Redis here: it must say why
            assert "needs PostgreSQL and Redis" in figures[name]["skipped"]
            continue
        missing = [k for k in keys if k not in figures[name]]
        assert not missing, (name, missing)
    saves = figures["8_unchanged_saves"]
    assert saves["saves"] == 100
    assert saves["model_calls"] == 0 and saves["suggestions_created"] == 0
    for value in (
        saves["with_app_ms"],
        saves["without_app_ms"],
        figures["1_bare_encoders"]["products_per_s"],
    ):
        assert math.isfinite(value) and value > 0
    assert figures["7_memory"]["web_imports_torch"] is False
    assert "8_unchanged_saves" in run.stdout  # the table is printed too
