"""Which shop models are products, and which of their fields prodcat reads and writes.

``prodcat_django.register(Product, title_field="title", image_field="photo",
category_field="category")`` works for models the shop owns (call it at the end of its
``models.py``) and for third-party models it cannot edit (call it from an ``AppConfig.ready()``),
like django-simple-history's ``register()``. It

- records a :class:`ProductSpec` for the model,
- adds a read-only attribute (default ``category_suggestion``) returning the product's current
  :class:`~prodcat_django.models.CategorySuggestion` or ``None``,
- from then on, the ``post_save``/``post_delete`` receivers of :mod:`prodcat_django.signals`
  (connected once by ``AppConfig.ready()``) act on the model and its proxies.

Field names are checked by the system checks (``prodcat.E001``/``E002``), not here, because a
model may be registered before its related models are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models

if TYPE_CHECKING:
    from django.contrib.contenttypes.models import ContentType

    from prodcat_django.models import CategorySuggestion


class AlreadyRegistered(ImproperlyConfigured):
    """The model was already registered with prodcat."""


class NotRegistered(LookupError):
    """The model (or the instance's model) is not registered with prodcat."""


@dataclass(frozen=True)
class ProductSpec:
    """How prodcat reads a registered product model."""

    model: type[models.Model]
    title_field: str
    category_field: str
    image_field: str | None = None
    category_model_override: type[models.Model] | str | None = None
    suggestion_attr: str = "category_suggestion"

    @property
    def label(self) -> str:
        """``app_label.ModelName``, as the ``--model`` option of the commands takes it."""
        return self.model._meta.label

    @property
    def category_model(self) -> type[models.Model]:
        """The shop's category model: the explicit one, else the category FK's target."""
        target = self.category_model_override
        if target is None:
            target = self.model._meta.get_field(self.category_field).related_model
        if isinstance(target, str):
            from django.apps import apps

            target = apps.get_model(target)
        if target is None:
            raise ImproperlyConfigured(
                f"{self.label}.{self.category_field} is not a relation; pass category_model= "
                "to prodcat_django.register()"
            )
        return target

    @property
    def content_type(self) -> ContentType:
        """The model's content type (cached by Django after the first lookup)."""
        from django.contrib.contenttypes.models import ContentType

        return ContentType.objects.get_for_model(self.model, for_concrete_model=True)

    def get_title(self, product: models.Model) -> str:
        return str(getattr(product, self.title_field) or "")

    def get_image(self, product: models.Model) -> Any:
        """The image ``FieldFile`` (falsy when empty), or None when no image field is set."""
        return getattr(product, self.image_field) if self.image_field else None

    def get_category_pk(self, product: models.Model) -> Any:
        return getattr(product, self.model._meta.get_field(self.category_field).attname)


class CurrentSuggestionDescriptor:
    """``product.category_suggestion``: the current suggestion, or None. Read-only.

    One query per access unless :func:`prodcat_django.services.prefetch_current_suggestions`
    filled the instance's cache (the admin does that for its changelist column).
    """

    def __init__(self, attr: str) -> None:
        self.attr = attr
        self.cache_name = f"_prodcat_{attr}_cache"

    def __get__(
        self, instance: models.Model | None, owner: type | None = None
    ) -> CategorySuggestion | CurrentSuggestionDescriptor | None:
        if instance is None:
            return self
        if self.cache_name in instance.__dict__:
            return instance.__dict__[self.cache_name]
        if instance.pk is None:
            return None
        from prodcat_django.models import CategorySuggestion

        return CategorySuggestion.objects.current_for(instance).first()

    def __set__(self, instance: models.Model, value: Any) -> None:
        raise AttributeError(
            f"{self.attr} is read-only; use prodcat_django.services to request or review one"
        )


_registry: dict[type[models.Model], ProductSpec] = {}


def register(
    model: type[models.Model],
    *,
    title_field: str,
    category_field: str,
    image_field: str | None = None,
    category_model: type[models.Model] | str | None = None,
    suggestion_attr: str = "category_suggestion",
) -> ProductSpec:
    """Register ``model`` as a product model; see the module docstring. Returns its spec."""
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise TypeError(f"prodcat_django.register() takes a model class, not {model!r}")
    if model._meta.abstract or model._meta.proxy:
        raise ImproperlyConfigured(
            f"{model._meta.label} is abstract or a proxy; register the concrete model"
        )
    if model in _registry:
        raise AlreadyRegistered(f"{model._meta.label} is already registered with prodcat_django")
    if hasattr(model, suggestion_attr):
        raise ImproperlyConfigured(
            f"{model._meta.label} already has an attribute {suggestion_attr!r}; pass another "
            "suggestion_attr= to prodcat_django.register()"
        )
    spec = ProductSpec(
        model=model,
        title_field=title_field,
        category_field=category_field,
        image_field=image_field,
        category_model_override=category_model,
        suggestion_attr=suggestion_attr,
    )
    setattr(model, suggestion_attr, CurrentSuggestionDescriptor(suggestion_attr))
    _registry[model] = spec
    return spec


def unregister(model: type[models.Model]) -> None:
    """Undo :func:`register` (for tests and for shops replacing a third-party registration)."""
    spec = _registry.pop(_concrete(model), None)
    if spec is None:
        raise NotRegistered(f"{model._meta.label} is not registered with prodcat_django")
    if isinstance(spec.model.__dict__.get(spec.suggestion_attr), CurrentSuggestionDescriptor):
        delattr(spec.model, spec.suggestion_attr)


def get_spec(model_or_instance: type[models.Model] | models.Model) -> ProductSpec:
    """The spec of a registered model or of an instance of one; raises :class:`NotRegistered`."""
    model = model_or_instance if isinstance(model_or_instance, type) else type(model_or_instance)
    try:
        return _registry[_concrete(model)]
    except KeyError:
        raise NotRegistered(
            f"{model._meta.label} is not registered with prodcat_django; call "
            "prodcat_django.register() for it"
        ) from None


def is_registered(model_or_instance: type[models.Model] | models.Model) -> bool:
    model = model_or_instance if isinstance(model_or_instance, type) else type(model_or_instance)
    return _concrete(model) in _registry


def registered_specs() -> list[ProductSpec]:
    """All specs, in registration order."""
    return list(_registry.values())


def get_spec_by_label(label: str) -> ProductSpec:
    """The spec of ``app_label.ModelName`` (case-insensitive); raises :class:`NotRegistered`."""
    for spec in _registry.values():
        if spec.label.lower() == label.lower():
            return spec
    raise NotRegistered(f"{label} is not a model registered with prodcat_django")


def _concrete(model: type[models.Model]) -> type[models.Model]:
    # A proxy of a registered model shares its table and its registration.
    return model._meta.concrete_model or model
