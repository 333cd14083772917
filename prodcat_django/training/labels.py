"""Model labels to shop categories.

A shop-trained version predicts category rows: its labels are the categories' primary keys (as
text) and its ``label_map`` keeps the name each had at training time, for display once a
category is gone. The built-in version predicts names; a
:class:`~prodcat_django.models.LabelMapping` row (editable in the admin) maps a label to a
category by primary key, and ``CATEGORY_MATCHER`` (name, then slug) fills in the rest. The
first match the matcher finds is recorded as a mapping row, so renaming the category later
("Tshirts" to "Men's T-Shirts") keeps it matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, transaction

from prodcat_django.models import LabelMapping, ModelVersion


def category_label(category: models.Model) -> str:
    """How a category is shown: its full path for trees ("Home > Kitchen > Mugs")."""
    parts = [str(category)]
    seen = {category.pk}
    parent = _parent(category)
    while parent is not None and parent.pk not in seen and len(parts) < 20:
        parts.append(str(parent))
        seen.add(parent.pk)
        parent = _parent(parent)
    return " > ".join(reversed(parts))


def _parent(category: models.Model) -> models.Model | None:
    # django-mptt and plain parent FKs have ``parent``; django-treebeard's MP/NS nodes
    # ``get_parent()``.
    getter = getattr(category, "get_parent", None)
    if callable(getter):
        try:
            return getter()
        except Exception:  # a treebeard node without a saved path
            return None
    try:
        field = category._meta.get_field("parent")
    except Exception:
        return None
    if getattr(field, "related_model", None) is type(category)._meta.concrete_model or (
        getattr(field, "related_model", None) is type(category)
    ):
        return getattr(category, "parent", None)
    return None


class LabelResolver:
    """Maps one model version's labels to categories of ``category_model`` (cached per label).

    ``record``: store the matcher's first match as a :class:`LabelMapping` (the worker does;
    a system check does not).
    """

    def __init__(
        self,
        version: ModelVersion | None,
        model_name: str,
        category_model: type[models.Model],
        *,
        record: bool = True,
    ) -> None:
        self.version = version
        self.model_name = model_name
        self.category_model = category_model
        self.record = record
        self._cache: dict[str, models.Model | None] = {}
        self._category_type = ContentType.objects.get_for_model(
            category_model, for_concrete_model=True
        )

    @property
    def by_pk(self) -> bool:
        """Whether labels are category pks (a shop-trained or imported version)."""
        return bool(
            self.version is not None and not self.version.builtin and self.version.label_map
        )

    def category(self, label: str) -> models.Model | None:
        if label not in self._cache:
            self._cache[label] = self._lookup(label)
        return self._cache[label]

    def display(self, label: str) -> str:
        """What a suggestion shows for ``label``: the built-in model's own label; for a
        shop-trained one the category's current label, else the name it had at training."""
        if not self.by_pk:
            return label
        category = self.category(label)
        if category is not None:
            return category_label(category)
        entry = self.version.label_map.get(label) or {}
        return str(entry.get("name") or label)

    def _lookup(self, label: str) -> models.Model | None:
        manager = self.category_model._default_manager
        if self.by_pk:
            entry = self.version.label_map.get(label) or {}
            pk = entry.get("category_pk")
            if pk in (None, ""):
                return None
            try:
                return manager.filter(pk=pk).first()
            except (ValueError, TypeError):
                return None
        mapping = LabelMapping.objects.filter(
            model_name=self.model_name, label=label, category_type=self._category_type
        ).first()
        if mapping is not None:
            try:
                found = manager.filter(pk=mapping.category_pk).first()
            except (ValueError, TypeError):
                found = None
            if found is not None:
                return found
        from prodcat_django.matching import get_matcher

        found = get_matcher()(label, self.category_model)
        if found is not None and self.record and mapping is None:
            try:
                with transaction.atomic():
                    LabelMapping.objects.create(
                        model_name=self.model_name,
                        label=label,
                        category_type=self._category_type,
                        category_pk=str(found.pk),
                    )
            except IntegrityError:
                pass  # recorded concurrently
        return found

    def coverage(self, labels: Sequence[str], categories: Sequence[models.Model]) -> dict[str, Any]:
        """For the system check and the versions page: the labels that reach no category, and
        the ``categories`` no label reaches."""
        unmatched = [label for label in labels if self.category(label) is None]
        reached = {c.pk for c in map(self.category, labels) if c is not None}
        missing = [c for c in categories if c.pk not in reached]
        return {"unmatched_labels": unmatched, "unreachable_categories": missing}


def label_map_for(categories: Sequence[models.Model]) -> dict[str, dict[str, Any]]:
    """The ``label_map`` of a version trained on ``categories`` (label = the pk as text)."""
    return {str(c.pk): {"category_pk": str(c.pk), "name": category_label(c)} for c in categories}


def import_label_map(
    labels: Sequence[str], category_model: type[models.Model]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The ``label_map`` of a checkpoint trained elsewhere: labels that are category pks (as
    ``prodcat_export_dataset`` writes them) map to those, others go through
    ``CATEGORY_MATCHER``. Returns the map and the labels that matched nothing."""
    from prodcat_django.matching import get_matcher

    manager = category_model._default_manager
    matcher = get_matcher()
    label_map: dict[str, dict[str, Any]] = {}
    unmatched = []
    for label in labels:
        try:
            category = manager.filter(pk=label).first()
        except (ValueError, TypeError):
            category = None
        if category is None:
            category = matcher(label, category_model)
        if category is None:
            unmatched.append(label)
            label_map[label] = {"category_pk": None, "name": label}
        else:
            label_map[label] = {"category_pk": str(category.pk), "name": category_label(category)}
    return label_map, unmatched
