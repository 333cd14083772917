"""The product adapter: how prodcat reads a shop's product and writes its category.

Subclass :class:`ProductAdapter` and register it with
``prodcat_django.register(Product, adapter=MyAdapter)``; ``register(Product, title_field=...,
category_field=...)`` builds the built-in :class:`~prodcat_django.adapters.fields.FieldAdapter`.
One instance serves one registered model. Every read of a product (the text and image the model
classifies, the current categories) and every write (an accepted category) in prodcat's
services, fingerprint, checks, admin and API goes through it. Methods take model instances,
never requests, and run in the web process and in the worker alike.

Categories are handled by *key*, the string prodcat stores: a category model's primary key,
or the name itself when the product stores names (``category_model = None``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.files import File
from django.db import models

from prodcat_django.adapters.categories import SEARCH_LIMIT, ModelCategories, NameCategories

if TYPE_CHECKING:
    from django.contrib.contenttypes.models import ContentType
    from django.core.checks import CheckMessage

    from prodcat_django.adapters.images import ImageSource


@dataclass(frozen=True)
class RelatedInput:
    """A related model whose saves and deletes change a product's inputs, e.g. the images::

        RelatedInput("catalogue.ProductImage", product=lambda image: image.product)

    ``model`` is a class or ``"app_label.ModelName"``; ``product`` returns the product an
    instance belongs to (or None); ``fields``, when given, limits a save with
    ``update_fields`` to those that touch one of them.
    """

    model: type[models.Model] | str
    product: Callable[[models.Model], models.Model | None]
    fields: Collection[str] | None = None

    def resolve_model(self) -> type[models.Model]:
        """The model class (needs the app registry for a string)."""
        if isinstance(self.model, str):
            from django.apps import apps

            return apps.get_model(self.model)
        return self.model


_UNSET: Any = object()


class ProductAdapter:
    """Reads and writes one registered product model. Override the methods marked so.

    Class attributes a subclass may set:

    - ``category_model``: the category model (class or ``"app_label.Model"``); None when the
      product stores category names (then override ``get_categories``/``apply_category`` to
      read and write them, and ``categories`` to list them).
    - ``related_inputs``: :class:`RelatedInput` for related models that carry inputs.
    - ``input_fields``: the product's own fields that are inputs; a save whose
      ``update_fields`` names none of them requests nothing. None (default): every save
      recomputes the fingerprint (cheap, and a new suggestion only when it changed).
    - ``category_field``: the product's field (an ORM lookup) holding its categories, where
      there is one (``"category"``, ``"categories"``): the admin's product form shows the
      suggestion beside it, and training and the label-coverage check query products by it.
      None: those features are off for this model.
    - ``title_field``: the product field the review queue's search looks in (None: not
      searchable by title).
    """

    category_model: type[models.Model] | None = None  # a property; see __init_subclass__
    related_inputs: Sequence[RelatedInput] = ()
    input_fields: Collection[str] | None = None
    category_field: str | None = None
    title_field: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass writes `category_model = "catalogue.Category"`; instances resolve it lazily
        # (register() may run before the category model is loaded).
        declared = cls.__dict__.get("category_model", _UNSET)
        if declared is not _UNSET and not isinstance(declared, property):
            cls._declared_category_model = declared
            cls.category_model = ProductAdapter.__dict__["category_model"]  # the property

    def __init__(
        self,
        model: type[models.Model],
        *,
        suggestion_attr: str = "category_suggestion",
        category_model: type[models.Model] | str | None = None,
    ) -> None:
        self.model = model
        self.suggestion_attr = suggestion_attr
        self.category_model_override = category_model

    # --- identity --------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """``app_label.ModelName``, as the ``--model`` option of the commands takes it."""
        return self.model._meta.label

    @property
    def content_type(self) -> ContentType:
        """The model's content type (cached by Django after the first lookup)."""
        from django.contrib.contenttypes.models import ContentType

        return ContentType.objects.get_for_model(self.model, for_concrete_model=True)

    # --- inputs: override get_text (and get_image when there is one) -----------------------

    def get_text(self, product: models.Model) -> str:
        """The text the model classifies, e.g. the title, or name + description."""
        raise NotImplementedError(f"{type(self).__name__} must define get_text()")

    def get_image(self, product: models.Model) -> ImageSource | None:
        """The product's image (:class:`~prodcat_django.adapters.ImageSource`), or None."""
        return None

    @cached_property
    def tracked_fields(self) -> tuple[tuple[str, str], ...] | None:
        """``(name, attname)`` of the product's own columns that make its inputs
        (``input_fields``): their values as loaded are kept on each instance, so an unchanged
        save can be told from a changed one without a query. None where the inputs are not
        only the product's own columns (no ``input_fields``, ``related_inputs``, a
        many-to-many or reverse relation, a name that is no field)."""
        if self.input_fields is None or self.related_inputs:
            return None
        tracked = []
        for name in sorted(self.input_fields):
            try:
                field = self.model._meta.get_field(name)
            except FieldDoesNotExist:
                return None
            if not getattr(field, "concrete", False) or field.many_to_many:
                return None
            tracked.append((field.name, field.attname))
        return tuple(tracked)

    def tracked_values(self, product: models.Model) -> tuple[Any, ...] | None:
        """The values of :attr:`tracked_fields` on ``product`` (a file by its name), read from
        the instance only (a deferred field is not loaded: None then)."""
        tracked = self.tracked_fields
        if tracked is None:
            return None
        values = []
        loaded = product.__dict__
        for _, attname in tracked:
            if attname not in loaded:
                return None
            value = loaded[attname]
            values.append(value.name if isinstance(value, File) else value)
        return tuple(values)

    def should_suggest(self, product: models.Model) -> bool:
        """Whether this product gets suggestions at all (False e.g. for a variant that takes
        its category from its parent). Its current suggestion is retired when it turns False."""
        return True

    def suggestable(self, queryset: models.QuerySet) -> models.QuerySet:
        """The bulk path's version of :meth:`should_suggest`, as a queryset filter (the bulk
        action and backfill never load the products; the worker checks should_suggest too)."""
        return queryset

    # --- categories: override get_categories and apply_category ----------------------------

    def get_categories(self, product: models.Model) -> list[str]:
        """The keys of the product's current categories (empty when it has none)."""
        raise NotImplementedError(f"{type(self).__name__} must define get_categories()")

    def apply_category(self, product: models.Model, category: Any) -> None:
        """File the product under ``category`` (an instance of ``category_model``, or a name
        when there is none): replace a single category, or add to a many-to-many (and drop a
        placeholder). Save with ``update_fields`` limited to category fields."""
        raise NotImplementedError(f"{type(self).__name__} must define apply_category()")

    def uncategorized(self, queryset: models.QuerySet) -> models.QuerySet:
        """The products of ``queryset`` without a (non-placeholder) category: what the bulk
        "Suggest categories" queues by default. Default: ``category_field`` is empty (all of
        ``queryset`` without one)."""
        if not self.category_field:
            return queryset
        return queryset.filter(**{f"{self.category_field}__isnull": True})

    def current_category_key(self, product: models.Model) -> str | None:
        """The product's main category key: the first that is not a placeholder, or None."""
        keys = [k for k in self.get_categories(product) if k and not self.is_placeholder(k)]
        return keys[0] if keys else None

    def is_placeholder(self, key: str) -> bool:
        """Whether a current category is a placeholder ("Uncategorised") that does not count
        as categorized."""
        return False

    def is_human_decided(self, product: models.Model) -> bool:
        """Whether the product's current category was chosen by a human: its latest decision
        was a human one, or it has a (non-placeholder) category other than the one the latest
        auto-accept put there (a category typed into the product form counts as human)."""
        from prodcat_django.models import SuggestionDecision

        current = {k for k in self.get_categories(product) if k and not self.is_placeholder(k)}
        latest = (
            SuggestionDecision.objects.filter(
                content_type=self.content_type, object_id=str(product.pk)
            )
            .order_by("-created_at", "-pk")
            .first()
        )
        if latest is not None and latest.is_human:
            return True
        if not current:
            return False
        return latest is None or not current <= {latest.category_pk}

    @cached_property
    def categories(self) -> ModelCategories | NameCategories:
        """Keys, labels, lookups and search over the shop's categories."""
        model = self.category_model
        if model is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} for {self.label} has no category_model; set it, or "
                "override categories"
            )
        return ModelCategories(model)

    def category_key(self, category: Any) -> str:
        return self.categories.key(category)

    def category_label(self, category: Any) -> str:
        """How a category is shown: the full path in a tree (``"Home > Kitchen > Mugs"``)."""
        return self.categories.label(category)

    def category_labels(self, keys: Sequence[str]) -> dict[str, str]:
        """``{key: label}`` of the keys that exist, in a constant number of queries."""
        return self.categories.labels(keys)

    def resolve_category(self, value: Any) -> Any:
        """A category from an instance, key, path or name; ``ValidationError`` otherwise."""
        return self.categories.resolve(value)

    def match_label(self, label: str) -> Any:
        """The category a model label maps to (``CATEGORY_MATCHER``), or None."""
        return self.categories.match(label)

    def search_categories(self, term: str, *, limit: int = SEARCH_LIMIT) -> list[tuple[str, str]]:
        """``[(key, label)]`` for the review page's autocomplete, constant queries."""
        return self.categories.search(term, limit=limit)

    # --- configuration ---------------------------------------------------------------------

    def _category_model(self) -> type[models.Model] | None:
        target = self.category_model_override
        if target is None:
            target = getattr(type(self), "_declared_category_model", None)
        if target is None:
            target = self.default_category_model()
        if isinstance(target, str):
            from django.apps import apps

            target = apps.get_model(target)
        return target

    def default_category_model(self) -> type[models.Model] | str | None:
        """The category model when none is declared (the built-in adapter infers it)."""
        return None

    def problems(self) -> list[str]:
        """What is wrong with this adapter that can be seen at ``register()`` time, before
        other apps are loaded (register() raises ``ImproperlyConfigured`` with them)."""
        missing = [
            name
            for name in ("get_text", "get_categories", "apply_category")
            if getattr(type(self), name) is getattr(ProductAdapter, name)
        ]
        return [f"{type(self).__name__} must define {', '.join(missing)}()"] if missing else []

    def check(self) -> list[CheckMessage]:
        """System-check messages that need loaded apps (the category and related models)."""
        from django.core import checks

        messages: list[CheckMessage] = []
        try:
            target = self._category_model()
        except (LookupError, ValueError) as exc:
            messages.append(
                checks.Error(
                    f"The category model of {self.label} cannot be resolved: {exc}",
                    hint="Give the category model class or its 'app_label.ModelName'.",
                    obj=self.model,
                    id="prodcat.E002",
                )
            )
        else:
            if target is not None and not (
                isinstance(target, type) and issubclass(target, models.Model)
            ):
                messages.append(
                    checks.Error(
                        f"The category model of {self.label} is {target!r}, not a model.",
                        obj=self.model,
                        id="prodcat.E002",
                    )
                )
        for related in self.related_inputs:
            try:
                related.resolve_model()
            except (LookupError, ValueError) as exc:
                messages.append(
                    checks.Error(
                        f"A related input of {self.label} names an unknown model: {exc}",
                        hint="RelatedInput(model=...) takes a model or 'app_label.ModelName'.",
                        obj=self.model,
                        id="prodcat.E002",
                    )
                )
        return messages


def _category_model_property(self: ProductAdapter) -> type[models.Model] | None:
    return self._category_model()


ProductAdapter.category_model = property(  # type: ignore[assignment]
    _category_model_property,
    doc="The shop's category model (None when the product stores category names).",
)
