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
        # Registers the system checks; signals are connected per model by register().
        from prodcat_django import checks  # noqa: F401
