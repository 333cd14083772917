"""Turning the ``category`` a client sends (a primary key, a name or a slug) into a category."""

from __future__ import annotations

from contextlib import suppress

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers

from prodcat_django.api.errors import Conflict
from prodcat_django.matching import get_matcher
from prodcat_django.models import CategorySuggestion
from prodcat_django.registry import get_spec


def resolve_category(suggestion: CategorySuggestion, value: str) -> models.Model:
    """The shop category ``value`` names for the suggestion's product model.

    A primary key wins; otherwise ``PRODCAT["CATEGORY_MATCHER"]`` resolves it as it resolves
    the model's labels (by default: name ignoring case, then slug). Raises a DRF
    ``ValidationError`` keyed by ``category`` when nothing fits.
    """
    try:
        category_model = get_spec(suggestion.content_type.model_class()).category_model
    except LookupError:
        raise Conflict("The product model of this suggestion is no longer registered.") from None
    value = value.strip()
    found = None
    # Not a valid primary key for this model: try it as a name or slug.
    with suppress(ValueError, TypeError, DjangoValidationError):
        found = category_model._default_manager.filter(pk=value).first()
    if found is None:
        found = get_matcher()(value, category_model)
    if found is None:
        name = category_model._meta.verbose_name
        raise serializers.ValidationError(
            {"category": [f"No {name} has the id, name or slug {value!r}."]}
        )
    return found
