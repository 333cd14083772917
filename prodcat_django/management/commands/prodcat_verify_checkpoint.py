"""Verify a checkpoint's files against its manifest and print what it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Verify the sha256 of every file of a checkpoint (default: PRODCAT['CHECKPOINT'], or "
        "the shipped one) and print its name, version, labels and metrics. Exits non-zero on "
        "any mismatch."
    )
    requires_system_checks: list[str] = []  # it diagnoses the very problem E003 reports

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="checkpoint directory")

    def handle(self, *args: Any, **options: Any) -> None:
        from prodcat_django.classifier import checkpoint_path
        from prodcat_django.ml.manifest import CheckpointError, verify_checkpoint

        try:
            path = Path(options["path"]) if options["path"] else checkpoint_path()
            info = verify_checkpoint(path)
        except CheckpointError as exc:
            raise CommandError(f"Checkpoint verification failed: {exc}") from None
        write = self.stdout.write
        write(f"path:      {info.path}")
        write(f"name:      {info.name}")
        write(f"version:   {info.version}")
        write(f"created:   {info.created_at}")
        threshold = "none" if info.threshold is None else f"{info.threshold:.4f}"
        write(f"threshold: {threshold} (auto-accept)")
        write(f"labels:    {len(info.labels)}: {', '.join(info.labels)}")
        write("metrics:   " + json.dumps(info.metrics, indent=2, sort_keys=True, default=str))
        write(self.style.SUCCESS("OK: every file matches the manifest."))
