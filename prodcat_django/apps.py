from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProdcatConfig(AppConfig):
    name = "prodcat_django"
    label = "prodcat_django"
    verbose_name = _("Category suggestions")
    # Our own, so a shop's DEFAULT_AUTO_FIELD never makes migrations for this app.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The entry points that plug into Django and Celery: system checks, the save/delete
        # receivers (one pair serves every registered model), the tasks (registered with
        # the Celery app by name; the service layer sends them by that name), and the
        # worker's heartbeat (runs only in a Celery worker).
        from prodcat_django import checks, signals, tasks, worker  # noqa: F401

        signals.connect()
        worker.connect()
