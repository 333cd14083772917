"""The shop's set of categories as an adapter sees it: a model (flat or a tree) or plain names.

Everything prodcat stores about a category is its *key*, a string: the primary key of a
category model, or the name itself for a ``CharField`` of names. These classes turn keys,
pks, names and paths (``"Footwear > Heels"``) into categories and back, in a constant number
of queries for any number of categories.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import suppress
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from prodcat_django.trees import SEPARATOR, name_field, split_path, tree_for

#: Results of a category search (the review page's autocomplete).
SEARCH_LIMIT = 20


class ModelCategories:
    """Categories that are rows of ``model``; full paths when it is a tree."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.tree = tree_for(model)
        self.name_field = name_field(model)

    @property
    def verbose_name(self) -> str:
        return str(self.model._meta.verbose_name)

    def key(self, category: Any) -> str:
        return str(category.pk if isinstance(category, models.Model) else category)

    def label(self, category: models.Model) -> str:
        return self.labels_of([category])[category.pk]

    def labels_of(self, objects: Sequence[models.Model]) -> dict[Any, str]:
        """``{pk: label}``: the full path in a tree, else ``str(category)``."""
        if self.tree is not None:
            return self.tree.labels(objects)
        return {obj.pk: str(obj) for obj in objects}

    def get_many(self, keys: Iterable[str]) -> dict[str, models.Model]:
        """``{key: category}`` for the keys that still exist (one query)."""
        pk_field = self.model._meta.pk
        values = []
        for key in {k for k in keys if k not in (None, "")}:
            with suppress(ValidationError, ValueError, TypeError):
                values.append(pk_field.to_python(key))
        if not values:
            return {}
        return {str(obj.pk): obj for obj in self.model._default_manager.filter(pk__in=values)}

    def labels(self, keys: Iterable[str]) -> dict[str, str]:
        """``{key: label}`` for the keys that exist (constant queries)."""
        found = self.get_many(keys)
        by_pk = self.labels_of(list(found.values()))
        return {key: by_pk[obj.pk] for key, obj in found.items()}

    def match(self, label: str) -> models.Model | None:
        """The category a model label names, by ``PRODCAT["CATEGORY_MATCHER"]``."""
        from prodcat_django.matching import get_matcher

        return get_matcher()(label, self.model)

    def resolve(self, value: Any) -> models.Model:
        """A category from an instance, a primary key, a path (``"Footwear > Heels"``) or a
        name/slug; raises ``ValidationError`` (code ``bad_category``) when none or several fit."""
        if isinstance(value, models.Model):
            if not isinstance(value, self.model):
                raise ValidationError(
                    f"{value!r} is not a {self.verbose_name}.", code="bad_category"
                )
            value = value.pk
        found = self.get_many([str(value)]).get(str(value)) if value not in (None, "") else None
        if found is not None:
            return found
        if isinstance(value, str) and value.strip():
            from prodcat_django.matching import resolve_name

            candidates = resolve_name(value.strip(), self.model)
            if len(candidates) == 1:
                return candidates[0]
            if len(candidates) > 1:
                labels = sorted(self.labels_of(candidates).values())
                raise ValidationError(
                    f"{value!r} names several categories ({'; '.join(labels)}); give the full "
                    f"path, as in {labels[0]!r}, or the id.",
                    code="ambiguous_category",
                )
        raise ValidationError(
            f"There is no {self.verbose_name} with the id, path or name {value!r}.",
            code="bad_category",
        )

    def search(self, term: str, *, limit: int = SEARCH_LIMIT) -> list[tuple[str, str]]:
        """``[(key, label)]`` of categories whose label contains ``term`` (a name, or part of a
        path such as ``"foot > he"``), sorted by label; a constant number of queries."""
        manager = self.model._default_manager
        segments = split_path(term)
        queryset = manager.all()
        if segments and self.name_field:
            queryset = queryset.filter(**{f"{self.name_field}__icontains": segments[-1]})
        elif segments:
            with suppress(ValidationError, ValueError, TypeError):
                return [(self.key(o), lab) for o, lab in self._labelled(manager.filter(pk=term))]
            return []
        # Over-fetch a bounded number: a path term filters on the ancestors' names too.
        candidates = list(
            queryset.order_by(*([self.name_field] if self.name_field else ["pk"]))[
                : limit * 5 if len(segments) > 1 else limit * 2
            ]
        )
        wanted = [s.lower() for s in segments]
        results = []
        for obj, label in self._labelled(candidates):
            if len(wanted) > 1 and not _path_contains(split_path(label), wanted):
                continue
            results.append((self.key(obj), label))
        return sorted(results, key=lambda kl: kl[1].lower())[:limit]

    def _labelled(self, objects: Iterable[models.Model]) -> list[tuple[models.Model, str]]:
        objects = list(objects)
        labels = self.labels_of(objects)
        return [(obj, labels[obj.pk]) for obj in objects]


def _path_contains(path: list[str], wanted: list[str]) -> bool:
    """Whether the path's last names contain the wanted fragments, in order."""
    names = [p.lower() for p in path]
    if len(wanted) > len(names):
        return False
    tail = names[len(names) - len(wanted) :]
    return all(w in n for w, n in zip(wanted, tail, strict=True))


class NameCategories:
    """Categories that are plain names in a ``CharField`` of the product. With ``choices``
    on the field only those are accepted; without, any non-blank name that fits."""

    verbose_name = "category"
    model = None
    tree = None

    def __init__(self, field: models.CharField) -> None:
        self.field = field
        self.choices = [(str(v), str(d)) for v, d in field.flatchoices] if field.choices else None

    def key(self, category: Any) -> str:
        return str(category)

    def label(self, category: Any) -> str:
        if self.choices:
            return dict(self.choices).get(str(category), str(category))
        return str(category)

    def labels(self, keys: Iterable[str]) -> dict[str, str]:
        return {k: self.label(k) for k in keys if k}

    def match(self, label: str) -> str | None:
        """The choice whose value or display equals the label ignoring case (with choices),
        else the label itself."""
        if not label:
            return None
        if self.choices is None:
            return label[: self.field.max_length] if self.field.max_length else label
        for value, display in self.choices:
            if label.casefold() in (value.casefold(), display.casefold()):
                return value
        return None

    def resolve(self, value: Any) -> str:
        text = str(value or "").strip()
        if not text:
            raise ValidationError("Give a category name.", code="bad_category")
        if self.choices is not None:
            found = self.match(text)
            if found is None:
                allowed = ", ".join(v for v, _ in self.choices)
                raise ValidationError(
                    f"{text!r} is not one of the categories ({allowed}).", code="bad_category"
                )
            return found
        if self.field.max_length and len(text) > self.field.max_length:
            raise ValidationError(
                f"A category name has at most {self.field.max_length} characters.",
                code="bad_category",
            )
        return text

    def search(self, term: str, *, limit: int = SEARCH_LIMIT) -> list[tuple[str, str]]:
        """Choices (with choices), else the names in use and the model's labels, containing
        ``term``; one query."""
        needle = term.strip().casefold()
        if self.choices is not None:
            pool = self.choices
        else:
            used = (
                self.field.model._default_manager.exclude(**{self.field.name: ""})
                .order_by()
                .values_list(self.field.name, flat=True)
                .distinct()
            )
            names = set(used.filter(**{f"{self.field.name}__icontains": needle})[: limit * 2])
            names.update(_checkpoint_labels())
            pool = [(n, n) for n in names]
        found = [(v, d) for v, d in pool if needle in d.casefold() or needle in v.casefold()]
        return sorted(found, key=lambda kv: kv[1].casefold())[:limit]


def _checkpoint_labels() -> list[str]:
    # The labels of the configured checkpoint (read from its files; no torch).
    from prodcat_django.classifier import checkpoint_info

    try:
        return list(checkpoint_info().labels)
    except Exception:  # a missing checkpoint is reported by the system checks
        return []


__all__ = ["SEARCH_LIMIT", "SEPARATOR", "ModelCategories", "NameCategories"]
