"""Mapping a model label to the shop's own category model (``PRODCAT["CATEGORY_MATCHER"]``).

A matcher is ``matcher(label: str, category_model: type[Model]) -> Model | None``. Point the
setting at your own function to map labels differently (a lookup table, a ``code`` field, ...).

The default, :func:`match_by_name_or_slug`, knows trees (django-mptt, django-treebeard, a
``parent`` key; see :mod:`prodcat_django.trees`). A label may be a path (``"Footwear > Heels"``)
or a leaf name. When several categories carry the name (``"Women > Heels"``, ``"Sale >
Heels"``), the path decides, never the lowest pk: ``PRODCAT["LABEL_PATHS"]`` (``{"Heels":
"Women > Heels"}``) names the path a label means; without it the leaves among them are kept,
and a name that is still ambiguous matches nothing (the merchant chooses; auto-accept never
guesses).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.module_loading import import_string
from django.utils.text import slugify

from prodcat_django.trees import name_field, split_path, tree_for

Matcher = Callable[[str, type[models.Model]], models.Model | None]

logger = logging.getLogger(__name__)


def _has_field(model: type[models.Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def resolve_name(value: str, category_model: type[models.Model]) -> list[models.Model]:
    """The categories ``value`` names: a path (its last names must end the category's path)
    or a name, compared ignoring case, else by slug. Several when ambiguous."""
    segments = split_path(value) or [value]
    manager = category_model._default_manager
    field = name_field(category_model)
    candidates: list[models.Model] = []
    if field:
        candidates = list(manager.filter(**{f"{field}__iexact": segments[-1]}).order_by("pk"))
        if not candidates and len(segments) > 1:  # a flat name that contains ">"
            candidates = list(manager.filter(**{f"{field}__iexact": value}).order_by("pk"))
            segments = [value]
    if not candidates and _has_field(category_model, "slug"):
        candidates = list(manager.filter(slug=slugify(segments[-1])).order_by("pk"))
    tree = tree_for(category_model)
    if tree is None or (len(candidates) < 2 and len(segments) < 2):
        return candidates
    wanted = [s.casefold() for s in segments]
    paths = tree.paths(candidates)
    return [
        c
        for c in candidates
        if [p.casefold() for p in paths[c.pk][-len(wanted) :]] == wanted or len(wanted) == 1
    ]


def match_by_name_or_slug(label: str, category_model: type[models.Model]) -> models.Model | None:
    """The category ``label`` names (see the module docstring); None when none or several."""
    if not label:
        return None
    from prodcat_django.conf import prodcat_settings

    path = (prodcat_settings.LABEL_PATHS or {}).get(label, label)
    candidates = resolve_name(path, category_model)
    if len(candidates) > 1:
        tree = tree_for(category_model)
        if tree is not None:
            leaves = tree.leaves(candidates)
            candidates = [c for c in candidates if c.pk in leaves] or candidates
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        logger.warning(
            "prodcat: the label %r names %d %s categories; give its path in "
            "PRODCAT['LABEL_PATHS'] (it matches none until then)",
            label,
            len(candidates),
            category_model._meta.label,
        )
    return None


def get_matcher() -> Matcher:
    from prodcat_django.conf import prodcat_settings

    matcher = prodcat_settings.CATEGORY_MATCHER
    return import_string(matcher) if isinstance(matcher, str) else matcher
