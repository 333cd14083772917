"""Re-send suggestions left pending (broker down at save time) or stuck."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prodcat_django import services
from prodcat_django.conf import prodcat_settings


class Command(BaseCommand):
    help = (
        "Send the Celery tasks of current suggestions that were never dispatched, whose "
        "worker's lease ran out, or that the broker lost (what the periodic sweep does); with "
        "--older-than, those pending/running for longer than that instead. Exits non-zero "
        "when the broker refused some."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="seconds after which a dispatched suggestion counts as stuck, whatever its "
            f"lease (default: by lease, PRODCAT['LEASE_SECONDS'] = "
            f"{prodcat_settings.LEASE_SECONDS} and DISPATCH_LEASE = "
            f"{prodcat_settings.DISPATCH_LEASE})",
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
