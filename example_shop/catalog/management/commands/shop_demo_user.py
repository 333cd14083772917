"""Create the demo superuser admin/admin, only in DEBUG and only when no superuser exists.

Used by the run script so a fresh checkout can log in at once. Real installs use
``python manage.py createsuperuser``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"  # DEBUG-only demo account; refused otherwise


class Command(BaseCommand):
    help = "Create the demo superuser admin/admin (DEBUG only; skipped if a superuser exists)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "Refusing to create a demo account with a known password while DEBUG is off; "
                "use `python manage.py createsuperuser`."
            )
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser exists already; nothing to do.")
            return
        User.objects.create_superuser(DEMO_USERNAME, email="", password=DEMO_PASSWORD)
        self.stdout.write(
            self.style.SUCCESS(f"Created superuser {DEMO_USERNAME!r} with password 'admin'.")
        )
