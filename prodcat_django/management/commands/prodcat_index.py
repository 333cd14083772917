"""File the catalogue's categorized products (and the category names) in the neighbour index."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prodcat_django.conf import prodcat_settings
from prodcat_django.index import current_revision
from prodcat_django.registry import NotRegistered, get_adapter_by_label, registered_adapters
from prodcat_django.services import neighbours


class Command(BaseCommand):
    help = (
        "File products that already have a category in the neighbour index (source "
        "'catalogue'), so the head suggests from them at once: queue Celery tasks (one per "
        "--batch-size products), or compute the vectors in this process with --sync (which "
        "also embeds the category names)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model",
            help="app_label.ModelName of the product model (needed when several are registered)",
        )
        parser.add_argument(
            "--only-missing",
            action="store_true",
            help="skip products already filed in the index (e.g. after a broker outage)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help=f"products per task (default PRODCAT['BULK_CHUNK_SIZE'], "
            f"{prodcat_settings.BULK_CHUNK_SIZE} now)",
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="compute the vectors here (loads the model) instead of in a Celery worker",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not neighbours.enabled():
            raise CommandError("The neighbour head is off (PRODCAT['NEIGHBOURS'] is False).")
        adapter = self._adapter(options["model"])
        size = options["batch_size"] or int(prodcat_settings.BULK_CHUNK_SIZE)
        if size < 1:
            raise CommandError("--batch-size must be at least 1")
        refs = neighbours.catalogue_refs(
            adapter.model._default_manager.all(), only_missing=options["only_missing"]
        )
        chunks = [refs[i : i + size] for i in range(0, len(refs), size)]
        if options["sync"]:
            from prodcat_django.training.store import active_predictor

            predictor = active_predictor().predictor
            names = neighbours.sync_names(adapter, predictor, force=True)
            filed = sum(neighbours.index_products(chunk, predictor) for chunk in chunks)
            self.stdout.write(
                f"Filed {filed} of {len(refs)} categorized {adapter.label} products and "
                f"{names} category name(s) in the neighbour index (revision "
                f"{current_revision()})."
            )
            return
        queued = 0
        for chunk in chunks:
            if not neighbours.dispatch_index(chunk):
                self.stderr.write(
                    self.style.WARNING(
                        f"The broker refused a task: {len(refs) - queued} product(s) not "
                        "queued; run this again with --only-missing once it is reachable."
                    )
                )
                break
            queued += len(chunk)
        self.stdout.write(
            f"Queued {queued} categorized {adapter.label} products for the neighbour index on "
            f"queue {prodcat_settings.QUEUE!r}; a Celery worker must consume it, e.g. "
            f"celery -A <your project> worker -Q {prodcat_settings.QUEUE}"
        )

    def _adapter(self, label: str | None) -> Any:
        if label:
            try:
                return get_adapter_by_label(label)
            except NotRegistered as exc:
                raise CommandError(str(exc)) from None
        adapters = registered_adapters()
        if len(adapters) != 1:
            names = ", ".join(sorted(a.label for a in adapters)) or "none"
            raise CommandError(f"Give --model (registered product models: {names}).")
        return adapters[0]
