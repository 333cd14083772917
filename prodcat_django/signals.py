"""Receivers that queue a suggestion when a registered product is saved or deleted.

In the spirit of django-celery-beat's ``signals.py``. One ``post_save`` and one ``post_delete``
receiver (fixed ``dispatch_uid``, connected by ``AppConfig.ready()``) serve every registered
model and the models of its adapter's ``related_inputs`` (a product image saved or deleted
after the product): ``post_save``'s sender is the class that saved, and a save through a
proxy of a registered model (a "to review" admin, say) must be seen too; a receiver per model
class would miss those. Unregistered senders cost two dict lookups.

An update of a product loaded from the database that changed none of its inputs costs no query
when this process knows its current suggestion (``services.unchanged_since_known``).

Several saves of one product's inputs in one transaction (the product, then its image formset)
make one suggestion: see :func:`prodcat_django.services.request_suggestion`.

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
from prodcat_django.registry import get_adapter, inputs_saved, is_registered, related_inputs_for

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
    touched no input (``update_fields`` outside the adapter's ``input_fields``)."""
    registered = is_registered(sender)
    if raw or not prodcat_settings.AUTO_SUGGEST:
        if registered:
            inputs_saved(instance, update_fields)  # what the row holds now, for later saves
        return
    if registered:
        adapter = get_adapter(sender)
        inputs = adapter.input_fields
        if update_fields is None or inputs is None or set(inputs) & set(update_fields):
            _request(instance, adapter.label, unchanged_is_known=not created)
        _neighbours(instance, adapter)
        inputs_saved(instance, update_fields)
    for adapter, related in related_inputs_for(sender):
        fields = related.fields
        if (
            update_fields is not None
            and fields is not None
            and not set(fields) & set(update_fields)
        ):
            continue
        _request_for_related(adapter, related, instance)


def product_deleted(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """Retire the deleted product's current suggestion (history and decisions stay); a
    deleted related input (an image) asks for a new suggestion of its product."""
    if is_registered(sender):
        from prodcat_django import services

        try:
            services.product_deleted(instance)
        except Exception:
            if getattr(settings, "DEBUG_PROPAGATE_EXCEPTIONS", False):
                raise
            logger.exception("prodcat: could not retire the suggestions of a deleted product")
        _neighbours_deleted(instance, get_adapter(sender))
    if prodcat_settings.AUTO_SUGGEST:
        for adapter, related in related_inputs_for(sender):
            _request_for_related(adapter, related, instance)


def _request_for_related(adapter: Any, related: Any, instance: models.Model) -> None:
    try:
        product = related.product(instance)
    except models.ObjectDoesNotExist:
        return  # the product is being deleted with it
    if product is None or product.pk is None:
        return
    if not isinstance(product, adapter.model):
        product = adapter.model._default_manager.filter(pk=product.pk).first()
        if product is None:
            return
    _request(product, adapter.label)


def _neighbours(product: models.Model, adapter: Any) -> None:
    """A category a human set on the product is learnt by the neighbour index."""
    from prodcat_django.services import neighbours

    try:
        neighbours.product_saved(product, adapter)
    except Exception:
        if getattr(settings, "DEBUG_PROPAGATE_EXCEPTIONS", False):
            raise
        logger.exception("prodcat: could not update the neighbour index for pk=%s", product.pk)


def _neighbours_deleted(product: models.Model, adapter: Any) -> None:
    from prodcat_django.services import neighbours

    try:
        neighbours.product_deleted(product, adapter)
    except Exception:
        if getattr(settings, "DEBUG_PROPAGATE_EXCEPTIONS", False):
            raise
        logger.exception("prodcat: could not drop a deleted product from the neighbour index")


def _request(product: models.Model, label: str, *, unchanged_is_known: bool = False) -> None:
    from prodcat_django import services

    try:
        # An instance saved as it was loaded, whose suggestion this process knows: no query.
        if unchanged_is_known and services.unchanged_since_known(product):
            return
        services.request_suggestion(product)
    except Exception:
        if getattr(settings, "DEBUG_PROPAGATE_EXCEPTIONS", False):
            raise
        logger.exception(
            "prodcat: could not request a suggestion for %s pk=%s; the product was saved",
            label,
            product.pk,
        )
