"""The built-in adapter: ``register(Product, title_field="title", image_field="photo",
category_field="category")`` in one line.

- ``title_field``: a text field, or several (``("name", "description")``, joined by a line
  break) for the text to classify;
- ``image_field``: optional; an ``ImageField``/``FileField``, or a ``URLField``/``CharField``
  holding an image URL (fetched by the worker only);
- ``category_field``: a ``ForeignKey`` to the category model (replaced on accept), a
  ``ManyToManyField`` (the accepted category is added and the ``placeholder_categories``
  removed), or a ``CharField`` of category names (its ``choices``, if any, are the categories).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from prodcat_django.adapters.base import ProductAdapter
from prodcat_django.adapters.categories import ModelCategories, NameCategories
from prodcat_django.adapters.images import ImageSource

_TEXT = (models.CharField, models.TextField)


class FieldAdapter(ProductAdapter):
    """Reads and writes the model's own fields, named at registration, or as class attributes
    of a subclass that overrides a method or two (``register(Item, adapter=MyFieldAdapter)``)::

        class ItemAdapter(FieldAdapter):
            title_fields = ("name",)
            category_field = "category"
            image_field = "image_url"

            def get_image(self, product):
                return ImageSource.from_url(product.image_url, etag=product.image_etag)
    """

    title_fields: tuple[str, ...] = ()
    category_field: str = ""  # type: ignore[assignment]
    image_field: str | None = None
    placeholder_categories: tuple[str, ...] = ()

    def __init__(
        self,
        model: type[models.Model],
        *,
        title_field: str | Sequence[str] | None = None,
        category_field: str | None = None,
        image_field: str | None = None,
        placeholder_categories: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(model, **options)
        if title_field is not None:
            self.title_fields = (
                (title_field,) if isinstance(title_field, str) else tuple(title_field)
            )
        if category_field is not None:
            self.category_field = category_field
        if image_field is not None:
            self.image_field = image_field
        if placeholder_categories:
            # Keys or names of categories that do not count (an "Uncategorised" default).
            self.placeholder_categories = tuple(str(p) for p in placeholder_categories)
        reads_own_fields = (
            type(self).get_text is FieldAdapter.get_text
            and type(self).get_image is FieldAdapter.get_image
        )
        if self.input_fields is None and reads_own_fields:
            # A subclass that reads other fields is left to check every save (input_fields
            # None) unless it names its inputs.
            self.input_fields = frozenset({*self.title_fields, self.image_field} - {None})

    @property  # type: ignore[override]
    def title_field(self) -> str:
        """The (first) text field."""
        return self.title_fields[0] if self.title_fields else ""

    def _field(self, name: str) -> models.Field:
        return self.model._meta.get_field(name)

    @property
    def category_kind(self) -> str:
        """``"fk"``, ``"m2m"`` or ``"names"``."""
        field = self._field(self.category_field)
        if isinstance(field, models.ManyToManyField):
            return "m2m"
        if isinstance(field, models.ForeignKey):
            return "fk"
        return "names"

    # --- inputs ----------------------------------------------------------------------------

    def get_text(self, product: models.Model) -> str:
        parts = [str(getattr(product, name) or "").strip() for name in self.title_fields]
        return "\n".join(p for p in parts if p)

    def get_image(self, product: models.Model) -> ImageSource | None:
        if not self.image_field:
            return None
        value = getattr(product, self.image_field)
        if isinstance(self._field(self.image_field), models.FileField):
            return ImageSource.from_field(value)
        return ImageSource.from_url(value)

    # --- categories ------------------------------------------------------------------------

    def default_category_model(self) -> type[models.Model] | str | None:
        return self._field(self.category_field).related_model

    @cached_property
    def categories(self) -> ModelCategories | NameCategories:  # type: ignore[override]
        if self.category_kind == "names":
            return NameCategories(self._field(self.category_field))  # type: ignore[arg-type]
        return ModelCategories(self.category_model)  # type: ignore[arg-type]

    def get_categories(self, product: models.Model) -> list[str]:
        kind = self.category_kind
        if kind == "m2m":
            # .all() uses a prefetch_related() cache when there is one.
            return [str(c.pk) for c in getattr(product, self.category_field).all()]
        attname = self._field(self.category_field).attname
        value = getattr(product, attname)
        return [] if value in (None, "") else [str(value)]

    def uncategorized(self, queryset: models.QuerySet) -> models.QuerySet:
        field = self.category_field
        kind = self.category_kind
        if kind == "names":
            return queryset.filter(models.Q(**{field: ""}) | models.Q(**{f"{field}__isnull": True}))
        if kind == "m2m" and self.placeholder_categories:
            # Only placeholders (or nothing): no category other than a placeholder.
            manager = self.category_model._default_manager
            placeholders = set(self.placeholder_categories)
            real = manager.exclude(pk__in=[p for p in placeholders if p.isdigit()])
            name = getattr(self.categories, "name_field", None)
            if name:
                real = real.exclude(**{f"{name}__in": placeholders})
            return queryset.exclude(**{f"{field}__in": real})
        return queryset.filter(**{f"{field}__isnull": True})

    def is_placeholder(self, key: str) -> bool:
        if not self.placeholder_categories:
            return False
        if key in self.placeholder_categories:
            return True
        labels = self.category_labels([key]) if self.category_kind != "names" else {}
        return labels.get(key) in self.placeholder_categories

    def apply_category(self, product: models.Model, category: Any) -> None:
        kind = self.category_kind
        if kind == "m2m":
            manager = getattr(product, self.category_field)
            placeholders = [k for k in self.get_categories(product) if self.is_placeholder(k)]
            if placeholders:
                manager.remove(*[p for p in placeholders if p != self.category_key(category)])
            manager.add(category)
            return
        setattr(product, self.category_field, category)
        # update_fields: the post_save receiver sees that no input changed and does nothing.
        product.save(update_fields=[self.category_field])

    # --- configuration ---------------------------------------------------------------------

    def problems(self) -> list[str]:
        found: list[str] = []
        expected: list[tuple[str, str, tuple[type, ...], str]] = [
            *(("title_field", n, _TEXT, "a CharField or TextField") for n in self.title_fields),
            (
                "category_field",
                self.category_field,
                (models.ForeignKey, models.ManyToManyField, models.CharField),
                "a ForeignKey or ManyToManyField to the category model, or a CharField of names",
            ),
        ]
        if self.image_field:
            expected.append(
                (
                    "image_field",
                    self.image_field,
                    (models.FileField, models.CharField),
                    "an ImageField/FileField, or a URLField/CharField of image URLs",
                )
            )
        if not self.title_fields:
            found.append("title_field names no field.")
        if not self.category_field:
            return [*found, "category_field names no field."]
        for option, name, types, description in expected:
            try:
                field = self._field(name)
            except FieldDoesNotExist:
                found.append(
                    f"{self.label} has no field {name!r} ({option} of prodcat_django.register); "
                    f"pass the name of {description}."
                )
                continue
            if isinstance(field, models.ForeignKey | models.OneToOneField) and option != (
                "category_field"
            ):
                found.append(
                    f"{self.label}.{name} is a {type(field).__name__}; {option} must be "
                    f"{description} (for a related model, register an adapter)."
                )
            elif not isinstance(field, types) or (
                option == "category_field" and isinstance(field, models.OneToOneField)
            ):
                found.append(
                    f"{self.label}.{name} is a {type(field).__name__}; {option} must be "
                    f"{description}."
                )
        if not found and self.category_kind == "names" and self.category_model_override is not None:
            found.append(
                f"{self.label}.{self.category_field} holds names; drop category_model= (a "
                "CharField of names has no category model)."
            )
        return found

    def check(self) -> list[Any]:
        from django.core import checks

        messages = super().check()
        if messages or self.category_model_override is None or self.category_kind == "names":
            return messages
        target = self._field(self.category_field).related_model
        category_model = self.category_model
        if target is not category_model:
            messages.append(
                checks.Error(
                    f"{self.label}.{self.category_field} points to {target._meta.label}, not to "
                    f"category_model {category_model._meta.label}.",
                    hint="Drop category_model= (it is inferred) or fix it.",
                    obj=self.model,
                    id="prodcat.E002",
                )
            )
        return messages
