"""Turning the ``category`` a client sends (a primary key, a path such as ``"Footwear >
Heels"``, a name or a slug; a name for products that store names) into a category."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from prodcat_django.api.errors import Conflict
from prodcat_django.models import CategorySuggestion
from prodcat_django.registry import get_adapter


def resolve_category(suggestion: CategorySuggestion, value: str) -> Any:
    """The shop category ``value`` names for the suggestion's product model, resolved by its
    adapter: a primary key wins; then a full path in a tree, then a name or slug. Raises a DRF
    ``ValidationError`` keyed by ``category`` when none fits, or when a name is ambiguous."""
    try:
        adapter = get_adapter(suggestion.content_type.model_class())
    except LookupError:
        raise Conflict("The product model of this suggestion is no longer registered.") from None
    try:
        return adapter.resolve_category(value.strip())
    except DjangoValidationError as exc:
        raise serializers.ValidationError({"category": exc.messages}) from None
