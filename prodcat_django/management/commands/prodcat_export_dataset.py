"""Write the shop's labelled products and decisions in the classifier's CSV format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prodcat_django.conf import prodcat_settings
from prodcat_django.training.dataset import DatasetError, build_dataset, export, product_spec


class Command(BaseCommand):
    help = (
        "Export the dataset prodcat_train would use: OUT_DIR/train.csv, val.csv and test.csv "
        "(id,title,label,image,label_name; label = category pk), images/, categories.json and "
        "decisions.csv. Train on it elsewhere (python -m prodcat_django.ml train --train "
        "OUT_DIR/train.csv --val OUT_DIR/val.csv --test OUT_DIR/test.csv --out CKPT) and bring "
        "the result back with manage.py prodcat_models import CKPT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out_dir", type=Path, help="an empty folder to write the CSVs into")
        parser.add_argument("--model", help="the product model (app_label.Model) if several")
        parser.add_argument(
            "--min-per-category",
            type=int,
            default=None,
            help="leave out categories with fewer products (default PRODCAT['MIN_PER_CATEGORY'])",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out_dir"]
        if out.exists() and any(out.iterdir()):
            raise CommandError(f"{out} exists and is not empty; choose a new folder")
        try:
            spec = product_spec(options["model"])
            dataset = build_dataset(
                spec,
                min_per_category=options["min_per_category"]
                or int(prodcat_settings.MIN_PER_CATEGORY),
            )
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        summary = export(dataset, out)
        self.stdout.write(
            f"Wrote {summary['products']} products in {summary['categories']} categories "
            f"(train {summary['splits']['train']}, val {summary['splits']['val']}, test "
            f"{summary['splits']['test']}) and {summary['images']} images to {out}."
        )
