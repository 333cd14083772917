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
        _maybe_warm_up_web()


def _maybe_warm_up_web() -> None:
    """``WARM_UP_WEB``: start loading the model now, unless this process is a Celery worker
    (its pool processes load their own, after the fork) or a management command other than
    ``runserver`` (migrate, shell, ...)."""
    import os
    import sys
    from pathlib import Path

    from prodcat_django.conf import prodcat_settings

    if not prodcat_settings.WARM_UP_WEB:
        return
    argv = sys.argv or [""]
    program = Path(argv[0]).name
    if "celery" in argv[0] or (program == "manage.py" and "runserver" not in argv[1:2]):
        return
    if program == "manage.py" and "--noreload" not in argv and os.environ.get("RUN_MAIN") != "true":
        return  # runserver's file watcher: the server is its child process
    from prodcat_django import services

    services.start_warm_up("web process start")
