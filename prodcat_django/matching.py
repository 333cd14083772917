"""Mapping a model label to the shop's own category model (``PRODCAT["CATEGORY_MATCHER"]``).

A matcher is ``matcher(label: str, category_model: type[Model]) -> Model | None``. Point the
setting at your own function to map labels differently (a lookup table, a ``code`` field, ...).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.module_loading import import_string
from django.utils.text import slugify

Matcher = Callable[[str, type[models.Model]], models.Model | None]


def _has_field(model: type[models.Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def match_by_name_or_slug(label: str, category_model: type[models.Model]) -> models.Model | None:
    """The category whose ``name`` equals ``label`` ignoring case, else whose ``slug`` equals
    ``slugify(label)``; None when neither field matches (or the model has neither field)."""
    if not label:
        return None
    manager = category_model._default_manager
    if _has_field(category_model, "name"):
        found = manager.filter(name__iexact=label).order_by("pk").first()
        if found is not None:
            return found
    if _has_field(category_model, "slug"):
        return manager.filter(slug=slugify(label)).order_by("pk").first()
    return None


def get_matcher() -> Matcher:
    from prodcat_django.conf import prodcat_settings

    matcher = prodcat_settings.CATEGORY_MATCHER
    return import_string(matcher) if isinstance(matcher, str) else matcher
