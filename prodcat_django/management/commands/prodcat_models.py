"""List, activate, roll back and import model versions (prodcat_django.training.store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prodcat_django.training import store
from prodcat_django.training.dataset import DatasetError, product_spec
from prodcat_django.training.labels import import_label_map


class Command(BaseCommand):
    help = (
        "Model versions: 'list', 'activate VERSION' (VERSION, NAME:VERSION, #ID or builtin), "
        "'rollback' (to the version active before), 'import DIR' (a checkpoint folder trained "
        "elsewhere, e.g. on prodcat_export_dataset's CSVs; added as a candidate)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, help="what to do")
        sub.add_parser("list", help="every version, newest first")
        activate = sub.add_parser("activate", help="make a version the active one")
        activate.add_argument("version", help="the version to activate (see list)")
        activate.add_argument(
            "--no-rerun",
            action="store_true",
            help="do not re-run ready (unreviewed) suggestions of older versions",
        )
        sub.add_parser("rollback", help="activate the version that was active before")
        imp = sub.add_parser("import", help="add a checkpoint folder as a candidate version")
        imp.add_argument("dir", type=Path, help="a checkpoint folder trained elsewhere")
        imp.add_argument("--model", help="the product model it predicts for (app_label.Model)")
        imp.add_argument("--activate", action="store_true", help="activate it at once")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"do_{options['action']}")(options)
        except (store.StoreError, DatasetError) as exc:
            raise CommandError(str(exc)) from None

    def do_list(self, options: dict[str, Any]) -> None:
        from prodcat_django.models import ModelVersion

        store.ensure_builtin()
        rows = ModelVersion.objects.order_by("-created_at", "-pk")
        self.stdout.write(
            f"{'id':>4}  {'version':<34} {'status':<9} {'trained':<16} {'products':>8} "
            f"{'accuracy':>8} {'aa prec':>7}  files"
        )
        for row in rows:
            test = (row.metrics.get("test") or {}).get("full") or {}
            accuracy = test.get("accuracy")
            precision = (test.get("auto_accept") or {}).get("precision")
            trained = f"{row.trained_at:%Y-%m-%d %H:%M}" if row.trained_at else ""
            files = "built-in" if row.builtin else ("deleted" if row.files_deleted else "stored")
            gate = "" if row.comparison.get("passed", True) else "  (did not pass the gate)"
            self.stdout.write(
                f"{row.pk:>4}  {row.name + ':' + row.version:<34} {row.status:<9} "
                f"{trained:<16} {row.dataset_size or '':>8} "
                f"{'' if accuracy is None else format(accuracy, '.2%'):>8} "
                f"{'' if precision is None else format(precision, '.2%'):>7}  {files}{gate}"
            )

    def do_activate(self, options: dict[str, Any]) -> None:
        row = store.find_version(options["version"])
        store.activate(row, rerun=not options["no_rerun"])
        self.stdout.write(f"Activated {row.name} {row.version}.")

    def do_rollback(self, options: dict[str, Any]) -> None:
        row = store.rollback()
        self.stdout.write(f"Rolled back: {row.name} {row.version} is active.")

    def do_import(self, options: dict[str, Any]) -> None:
        from prodcat_django.ml.manifest import CheckpointError, read_checkpoint

        spec = product_spec(options["model"])
        try:
            info = read_checkpoint(options["dir"])
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        label_map, unmatched = import_label_map(info.labels, spec.category_model)
        row = store.add_version(
            options["dir"], label_map=label_map, product_model=spec.label, note="imported"
        )
        self.stdout.write(f"Imported {row.name} {row.version} as a {row.status}.")
        if unmatched:
            self.stdout.write(
                f"{len(unmatched)} label(s) match no category of {spec.label}: "
                + ", ".join(unmatched[:20])
            )
        if options["activate"]:
            store.activate(row)
            self.stdout.write(f"Activated {row.name} {row.version}.")
