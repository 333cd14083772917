"""System checks of the Oscar add-on (``prodcat_oscar.*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.apps import apps
from django.core import checks

#: Oscar's dashboard product form, which the add-on's template of the same name extends.
PRODUCT_FORM_TEMPLATE = "oscar/dashboard/catalogue/product_update.html"


@checks.register(checks.Tags.compatibility)
def check_installation(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if not apps.is_installed("prodcat_django"):
        messages.append(
            checks.Error(
                "prodcat_django.contrib.oscar needs prodcat_django in INSTALLED_APPS.",
                hint='Add "prodcat_django" to INSTALLED_APPS.',
                id="prodcat_oscar.E001",
            )
        )
    messages.extend(_check_template_order())
    return messages


def _check_template_order() -> list[checks.CheckMessage]:
    # The suggestion panel lives in a template named like Oscar's: app template directories
    # are searched in INSTALLED_APPS order, so the add-on must come before Oscar's apps.
    from django.template import TemplateDoesNotExist, loader

    ours = Path(apps.get_app_config("prodcat_oscar").path) / "templates"
    try:
        origin = loader.get_template(PRODUCT_FORM_TEMPLATE).origin.name
    except TemplateDoesNotExist:
        return []  # not our concern: Oscar's own checks report a broken template set-up
    except Exception:  # a template engine other than Django's, or none
        return []
    if Path(str(origin)).is_relative_to(ours):
        return []
    return [
        checks.Warning(
            "The dashboard's product form does not show category suggestions: "
            f"{PRODUCT_FORM_TEMPLATE} is loaded from {origin}.",
            hint='List "prodcat_django.contrib.oscar" before Oscar\'s apps in INSTALLED_APPS '
            "(or, if your shop overrides that template, extend the add-on's panel there: "
            '{% include "prodcat_oscar/product_suggestion.html" %}).',
            id="prodcat_oscar.W001",
        )
    ]
