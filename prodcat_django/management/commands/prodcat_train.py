"""Train a new model version on the shop's catalogue and decisions (prodcat_django.training)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prodcat_django.conf import prodcat_settings
from prodcat_django.training.dataset import DatasetError, build_dataset, product_spec
from prodcat_django.training.schedule import TrainingLocked, training_lock
from prodcat_django.training.store import StoreError
from prodcat_django.training.trainer import ENCODERS, train_new_version


class Command(BaseCommand):
    help = (
        "Train a model on the registered product model's categorized products and the "
        "merchants' decisions, evaluate it on held-out products and store it as a new version. "
        "It becomes active only if it is at least as good as the active version on the same "
        "held-out products (accuracy and auto-accept precision); --force activates it anyway."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", help="the product model (app_label.Model) if several")
        parser.add_argument(
            "--min-per-category",
            type=int,
            default=None,
            help="leave out categories with fewer products (default PRODCAT['MIN_PER_CATEGORY'], "
            f"{prodcat_settings.MIN_PER_CATEGORY} now)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print the dataset and stop before training"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="activate the new version even if it fails the gate",
        )
        parser.add_argument(
            "--no-activate", action="store_true", help="store the new version as a candidate only"
        )
        parser.add_argument(
            "--encoders",
            choices=ENCODERS,
            default="pretrained",
            help="tiny-random: small random encoders and a small model, for tests of the command "
            "itself",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tty = (hasattr(self.stdout, "isatty") and self.stdout.isatty()) or sys.stderr.isatty()
        try:
            spec = product_spec(options["model"])
            minimum = options["min_per_category"] or int(prodcat_settings.MIN_PER_CATEGORY)
            if options["dry_run"]:
                dataset = build_dataset(spec, min_per_category=minimum)
                for line in dataset.describe():
                    self.stdout.write(line)
                if not dataset.has_images:
                    self.stdout.write("no product has an image: training would be title-only")
                self.stdout.write(f"dataset fingerprint {dataset.fingerprint()}")
                return
            with training_lock():
                outcome = train_new_version(
                    spec,
                    min_per_category=minimum,
                    force=options["force"],
                    activate=not options["no_activate"],
                    encoders=options["encoders"],
                    say=self.stdout.write,
                    progress=bool(tty),
                )
        except (DatasetError, StoreError, TrainingLocked) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{outcome.version.name} {outcome.version.version}: "
            + ("active" if outcome.activated else "candidate")
            + f" (train {outcome.seconds.get('train', 0)} s, total {outcome.seconds['total']} s)"
        )
