"""Re-send suggestions left pending (broker down at save time) or stuck."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prodcat_django import services
from prodcat_django.conf import prodcat_settings


class Command(BaseCommand):
    help = (
        "Send the Celery tasks of current suggestions that were never dispatched, or that are "
        "pending/running for longer than --older-than seconds. Exits non-zero when the broker "
        "refused some."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help=f"seconds after which a dispatched suggestion counts as stuck "
            f"(default PRODCAT['STUCK_AFTER'], {prodcat_settings.STUCK_AFTER} now)",
        )
        parser.add_argument("--limit", type=int, default=None, help="send at most this many")

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"]
        if older_than is not None and older_than < 0:
            raise CommandError("--older-than must not be negative")
        candidates = services.stuck_suggestions(older_than=older_than).count()
        if options["limit"] is not None:
            candidates = min(candidates, options["limit"])
        sent = services.dispatch_pending(older_than=older_than, limit=options["limit"])
        self.stdout.write(f"Dispatched {sent} of {candidates} pending suggestion(s).")
        if sent < candidates:
            raise CommandError(
                f"The broker refused {candidates - sent} suggestion(s); they stay pending. "
                "Check CELERY_BROKER_URL and run this again."
            )
