"""Receivers that queue a suggestion when a registered product is saved or deleted.

In the spirit of django-celery-beat's ``signals.py``. One ``post_save`` and one ``post_delete``
receiver (fixed ``dispatch_uid``, connected by the first :func:`prodcat_django.register`) serve
every registered model: ``post_save``'s sender is the class that saved, and a save through a
proxy of a registered model (a "to review" admin, say) must be seen too; a receiver per model
class would miss those. Unregistered senders cost one dict lookup.

``QuerySet.bulk_create()`` and ``QuerySet.update()`` send no signals: after a bulk import, call
``services.request_suggestions(queryset)`` or run ``manage.py prodcat_backfill --only-missing``.

Saving a product never fails because of prodcat: an error in the suggestion machinery is logged
and the save goes on. With ``DEBUG_PROPAGATE_EXCEPTIONS`` on (the test settings) it propagates,
so tests see programming errors.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete, post_save

from prodcat_django.conf import prodcat_settings
from prodcat_django.registry import get_spec, is_registered

logger = logging.getLogger(__name__)


def connect() -> None:
    """Connect the receivers (idempotent)."""
    post_save.connect(product_saved, dispatch_uid="prodcat_django.product_saved")
    post_delete.connect(product_deleted, dispatch_uid="prodcat_django.product_deleted")


def product_saved(
    sender: type[models.Model],
    instance: models.Model,
    created: bool = False,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    """Request a suggestion unless this is a fixture load, auto-suggest is off, or the save
    touched neither the title nor the image."""
    if raw or not is_registered(sender) or not prodcat_settings.AUTO_SUGGEST:
        return
    from prodcat_django import services

    spec = get_spec(sender)
    inputs = {spec.title_field, spec.image_field} - {None}
    if update_fields is not None and not inputs & set(update_fields):
        return
    try:
        services.request_suggestion(instance)
    except Exception:
        if getattr(settings, "DEBUG_PROPAGATE_EXCEPTIONS", False):
            raise
        logger.exception(
            "prodcat: could not request a suggestion for %s pk=%s; the product was saved",
            spec.label,
            instance.pk,
        )


def product_deleted(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """Retire the deleted product's current suggestion (history and decisions stay)."""
    if not is_registered(sender):
        return
    from prodcat_django import services

    try:
        services.product_deleted(instance)
    except Exception:
        if getattr(settings, "DEBUG_PROPAGATE_EXCEPTIONS", False):
            raise
        logger.exception("prodcat: could not retire the suggestions of a deleted product")
