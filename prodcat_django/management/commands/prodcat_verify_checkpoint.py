"""Verify a checkpoint's files against its manifest and print what it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


def _headline(metrics: dict) -> list[str]:
    """One line per split (test first, then validation): accuracy with the full title, and
    what auto-accept does (precision, coverage)."""
    lines = []
    for split in ("test", "val"):
        full = (metrics.get(split) or {}).get("full") if isinstance(metrics, dict) else None
        if not isinstance(full, dict) or "accuracy" not in full:
            continue
        line = f"{split + ':':<10} accuracy {100 * float(full['accuracy']):.1f}%"
        auto = full.get("auto_accept")
        if isinstance(auto, dict) and "precision" in auto and "coverage" in auto:
            line += (
                f", auto-accept precision {100 * float(auto['precision']):.1f}% "
                f"on {100 * float(auto['coverage']):.0f}% of products"
            )
        if "n" in full:
            line += f" ({full['n']} products)"
        lines.append(line)
    return lines


class Command(BaseCommand):
    help = (
        "Verify the sha256 of every file of a checkpoint (default: PRODCAT['CHECKPOINT'], or "
        "the shipped one) and print a short summary: name, version, number of labels, "
        "auto-accept threshold and the headline accuracy (--verbose: every label and metric). "
        "Exits non-zero on any mismatch."
    )
    requires_system_checks: list[str] = []  # it diagnoses the very problem E003 reports

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path",
            nargs="?",
            help="checkpoint directory (default: PRODCAT['CHECKPOINT'], or the shipped one)",
        )
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="also print every label and the full metrics (as JSON)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from prodcat_django.classifier import checkpoint_path
        from prodcat_django.ml.manifest import CheckpointError, verify_checkpoint

        try:
            path = Path(options["path"]) if options["path"] else checkpoint_path()
            info = verify_checkpoint(path)
        except CheckpointError as exc:
            raise CommandError(f"Checkpoint verification failed: {exc}") from None
        write = self.stdout.write
        verbose = options["verbose"] or options["verbosity"] >= 2
        write(f"path:      {info.path}")
        write(f"name:      {info.name}")
        write(f"version:   {info.version}")
        write(f"created:   {info.created_at}")
        threshold = "none" if info.threshold is None else f"{info.threshold:.4f}"
        write(f"threshold: {threshold} (auto-accept)")
        if verbose:
            write(f"labels:    {len(info.labels)}: {', '.join(info.labels)}")
            write("metrics:   " + json.dumps(info.metrics, indent=2, sort_keys=True, default=str))
        else:
            write(f"labels:    {len(info.labels)}")
            for line in _headline(info.metrics):
                write(line)
        write(self.style.SUCCESS("OK: every file matches the manifest."))
