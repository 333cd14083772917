"""Print the markdown results table of docs/results.md from checkpoints' manifest.json files.

    .venv/bin/python benchmarks/ml_results_table.py CHECKPOINT_DIR [CHECKPOINT_DIR ...]

Test metrics are the ones recorded once, at the end of training (``train --test``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CONDITIONS = [
    ("full", "full title + image"),
    ("terse", "terse title + image"),
    ("image_only", "image only (--no-title)"),
    ("title_only", "title only (--no-image)"),
]


def main(paths: list[str]) -> None:
    print("| checkpoint | fusion | " + " | ".join(label for _, label in CONDITIONS) + " |")
    print("|---|---|" + "---|" * len(CONDITIONS))
    for path in paths:
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        config = json.loads((Path(path) / "config.json").read_text())
        test = manifest["metrics"].get("test", {})
        cells = [
            f"{100 * test[key]['accuracy']:.2f}" if key in test else "-" for key, _ in CONDITIONS
        ]
        print(f"| {manifest['name']} | {config['model']['fusion']} | " + " | ".join(cells) + " |")
    print()
    print(
        "| checkpoint | T | threshold | test ECE (full) | auto-accept precision / coverage (full) |"
    )
    print("|---|---|---|---|---|")
    for path in paths:
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        full = manifest["metrics"].get("test", {}).get("full")
        if not full:
            continue
        aa = full["auto_accept"]
        precision = "-" if aa["precision"] is None else f"{100 * aa['precision']:.2f}%"
        threshold = manifest["threshold"]
        print(
            f"| {manifest['name']} | {manifest['temperature']:.3f} | "
            f"{'-' if threshold is None else f'{threshold:.4f}'} | {100 * full['ece']:.2f}% | "
            f"{precision} / {100 * aa['coverage']:.2f}% |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
