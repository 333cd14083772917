"""Queue (or, with --sync, compute) suggestions for existing products."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prodcat_django import services
from prodcat_django.conf import prodcat_settings
from prodcat_django.models import CategorySuggestion
from prodcat_django.registry import NotRegistered, get_adapter_by_label, registered_adapters


class _Progress:
    """tqdm when installed, else a line of counts every chunk."""

    def __init__(self, command: BaseCommand, total: int, desc: str) -> None:
        self.command, self.total, self.desc, self.done = command, total, desc, 0
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, desc=desc, unit="product", file=command.stderr._out)

    def __call__(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        else:
            self.command.stderr.write(f"{self.desc}: {self.done}/{self.total}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress_url(batch_pk: int) -> str:
    """The batch's progress page on the default admin site (a path; empty if not mounted)."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("admin:prodcat_django_suggestionbatch_progress", args=[batch_pk])
    except NoReverseMatch:
        return ""


class Command(BaseCommand):
    help = (
        "Request category suggestions for existing products: queue Celery tasks "
        "(one per --batch-size products), or run them in this process with --sync."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model",
            help="app_label.ModelName of the product model (needed when several are registered)",
        )
        parser.add_argument(
            "--only-missing",
            action="store_true",
            help="skip products that already have a pending, ready or reviewed suggestion",
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
            help="compute the suggestions here instead of in a Celery worker",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        adapter = self._adapter(options["model"])
        batch_size = options["batch_size"]
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        queryset = adapter.model._default_manager.all()
        count = queryset.count()
        progress = _Progress(self, count, "queue")
        try:
            batch = services.request_suggestions(
                queryset,
                only_missing=options["only_missing"],
                chunk_size=batch_size,
                label=f"backfill of {adapter.label}",
                send=not options["sync"],
                progress=progress,
            )
        finally:
            progress.close()
        if not options["sync"]:
            self.stdout.write(
                f"Queued {batch.total} of {count} {adapter.label} products as batch {batch.pk} "
                f"on queue {prodcat_settings.QUEUE!r}."
            )
            self.stdout.write(
                "A Celery worker must consume that queue for them to be classified, e.g. "
                f"celery -A <your project> worker -Q {prodcat_settings.QUEUE}"
            )
            if url := _progress_url(batch.pk):
                self.stdout.write(f"Watch the progress in the admin: {url}")
            # Outside a transaction each chunk was sent when it committed, so this is final.
            unsent = CategorySuggestion.objects.filter(batch=batch, dispatched_at__isnull=True)
            if n := unsent.count():
                self.stderr.write(
                    self.style.WARNING(
                        f"{n} suggestion(s) could not be sent to the broker and stay pending; "
                        "run prodcat_dispatch_pending once it is reachable."
                    )
                )
            return
        ids = list(
            CategorySuggestion.objects.filter(batch=batch)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        chunk = batch_size or int(prodcat_settings.BULK_CHUNK_SIZE)
        totals = dict.fromkeys(("ready", "auto_accepted", "failed", "obsolete", "skipped"), 0)
        progress = _Progress(self, len(ids), "suggest")
        try:
            for start in range(0, len(ids), chunk):
                part = ids[start : start + chunk]
                for key, done in services.run_suggestions(part).as_dict().items():
                    totals[key] += len(done)
                progress(len(part))
        finally:
            progress.close()
        self.stdout.write(
            f"Suggested {len(ids)} of {count} {adapter.label} products (batch {batch.pk}): "
            + ", ".join(f"{n} {key.replace('_', '-')}" for key, n in totals.items())
        )

    def _adapter(self, label: str | None) -> Any:
        if label:
            try:
                return get_adapter_by_label(label)
            except NotRegistered as exc:
                raise CommandError(str(exc)) from None
        adapters = registered_adapters()
        if not adapters:
            raise CommandError("No product model is registered with prodcat_django.")
        if len(adapters) > 1:
            names = ", ".join(s.label for s in adapters)
            raise CommandError(f"Several product models are registered ({names}); pass --model.")
        return adapters[0]
