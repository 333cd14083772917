"""Which shop models are products, and the adapter that reads and writes each.

``prodcat_django.register(Product, title_field="title", image_field="photo",
category_field="category")`` (the built-in :class:`~prodcat_django.adapters.FieldAdapter`) or
``prodcat_django.register(Product, adapter=MyAdapter)`` (a
:class:`~prodcat_django.adapters.ProductAdapter` subclass) works for models the shop owns
(call it at the end of its ``models.py``) and for third-party models it cannot edit (call it
from an ``AppConfig.ready()``), like django-simple-history's ``register()``. It

- checks what it can at once (field names and types, the adapter's methods) and raises
  ``ImproperlyConfigured`` with a clear message: Celery workers never run ``manage.py check``.
  What needs other apps loaded (a category model named by string, related input models) is
  left to the system checks;
- records the adapter for the model;
- adds a read-only attribute (default ``category_suggestion``) returning the product's current
  :class:`~prodcat_django.models.CategorySuggestion` or ``None``;
- keeps, on each instance of the model and its proxies (``post_init``), the values of the
  adapter's input fields as loaded (:func:`loaded_inputs`), so that a save that changed none
  of them can be told without a query;
- from then on, the ``post_save``/``post_delete`` receivers of :mod:`prodcat_django.signals`
  (connected once by ``AppConfig.ready()``) act on the model, its proxies, and the models of
  its adapter's ``related_inputs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.signals import class_prepared, post_init

from prodcat_django.adapters import FieldAdapter, ProductAdapter

if TYPE_CHECKING:
    from prodcat_django.adapters import RelatedInput
    from prodcat_django.models import CategorySuggestion


class AlreadyRegistered(ImproperlyConfigured):
    """The model was already registered with prodcat."""


class NotRegistered(LookupError):
    """The model (or the instance's model) is not registered with prodcat."""


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


_registry: dict[type[models.Model], ProductAdapter] = {}
# Related input model -> [(adapter, related input)], built on first use once apps are loaded.
_related_index: dict[type[models.Model], list[tuple[ProductAdapter, RelatedInput]]] | None = None


def register(
    model: type[models.Model],
    adapter: type[ProductAdapter] | None = None,
    *,
    title_field: str | tuple[str, ...] | list[str] | None = None,
    category_field: str | None = None,
    image_field: str | None = None,
    category_model: type[models.Model] | str | None = None,
    suggestion_attr: str = "category_suggestion",
    placeholder_categories: tuple[str, ...] | list[str] = (),
) -> ProductAdapter:
    """Register ``model`` as a product model; see the module docstring. Give either
    ``adapter`` (a ProductAdapter subclass) or the field names. Returns the adapter."""
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
    options: dict[str, Any] = {"suggestion_attr": suggestion_attr, "category_model": category_model}
    fields_given = any(v is not None for v in (title_field, category_field, image_field))
    if adapter is not None:
        if fields_given or placeholder_categories:
            raise TypeError(
                "prodcat_django.register() takes an adapter or field names, not both: the "
                "adapter reads the fields itself"
            )
        if not (isinstance(adapter, type) and issubclass(adapter, ProductAdapter)):
            raise TypeError(
                f"adapter= takes a subclass of prodcat_django.adapters.ProductAdapter, not "
                f"{adapter!r}"
            )
        instance = adapter(model, **options)
    else:
        if title_field is None or category_field is None:
            raise TypeError(
                "prodcat_django.register() needs title_field= and category_field= (and "
                "optionally image_field=), or adapter=ProductAdapterSubclass"
            )
        instance = FieldAdapter(
            model,
            title_field=title_field,
            category_field=category_field,
            image_field=image_field,
            placeholder_categories=placeholder_categories,
            **options,
        )
    problems = instance.problems()
    if problems:
        raise ImproperlyConfigured(
            f"prodcat_django.register({model._meta.label}): " + " ".join(problems)
        )
    setattr(model, suggestion_attr, CurrentSuggestionDescriptor(suggestion_attr))
    _registry[model] = instance
    _forget_related_index()
    if instance.tracked_fields is not None:
        _track(model)
        for proxy in _proxies_of(model):
            _track(proxy)
    return instance


def unregister(model: type[models.Model]) -> None:
    """Undo :func:`register` (for tests and for shops replacing a third-party registration)."""
    adapter = _registry.pop(_concrete(model), None)
    if adapter is None:
        raise NotRegistered(f"{model._meta.label} is not registered with prodcat_django")
    if isinstance(adapter.model.__dict__.get(adapter.suggestion_attr), CurrentSuggestionDescriptor):
        delattr(adapter.model, adapter.suggestion_attr)
    _forget_related_index()
    for tracked in [m for m in _tracked if _concrete(m) is adapter.model]:
        post_init.disconnect(sender=tracked, dispatch_uid=_TRACK_UID)
        _tracked.discard(tracked)


def get_adapter(model_or_instance: type[models.Model] | models.Model) -> ProductAdapter:
    """The adapter of a registered model or of an instance of one; raises NotRegistered."""
    model = model_or_instance if isinstance(model_or_instance, type) else type(model_or_instance)
    try:
        return _registry[_concrete(model)]
    except (KeyError, AttributeError):
        raise NotRegistered(
            f"{model._meta.label} is not registered with prodcat_django; call "
            "prodcat_django.register() for it"
        ) from None


def is_registered(model_or_instance: type[models.Model] | models.Model) -> bool:
    model = model_or_instance if isinstance(model_or_instance, type) else type(model_or_instance)
    return _concrete(model) in _registry


def registered_adapters() -> list[ProductAdapter]:
    """All adapters, in registration order."""
    return list(_registry.values())


def get_adapter_by_label(label: str) -> ProductAdapter:
    """The adapter of ``app_label.ModelName`` (case-insensitive); raises NotRegistered."""
    for adapter in _registry.values():
        if adapter.label.lower() == label.lower():
            return adapter
    raise NotRegistered(f"{label} is not a model registered with prodcat_django")


def related_inputs_for(
    model: type[models.Model],
) -> list[tuple[ProductAdapter, RelatedInput]]:
    """The adapters (and their related inputs) that a save or delete of ``model`` concerns."""
    global _related_index
    if _related_index is None:
        from django.apps import apps

        if not apps.ready:
            return []
        index: dict[type[models.Model], list[tuple[ProductAdapter, RelatedInput]]] = {}
        for adapter in _registry.values():
            for related in adapter.related_inputs:
                try:
                    target = related.resolve_model()
                except (LookupError, ValueError):
                    continue  # reported by the system checks (prodcat.E002)
                index.setdefault(_concrete(target), []).append((adapter, related))
        _related_index = index
    return _related_index.get(_concrete(model), [])


def _forget_related_index() -> None:
    global _related_index
    _related_index = None


def _concrete(model: type[models.Model]) -> type[models.Model]:
    # A proxy of a registered model shares its table and its registration.
    return model._meta.concrete_model or model


# ── the inputs' values as loaded ──────────────────────────────────────────────────────────

#: The instance attribute holding its input fields' values as loaded (or as last saved).
LOADED_INPUTS = "_prodcat_loaded_inputs"
_TRACK_UID = "prodcat_django.loaded_inputs"
_tracked: set[type[models.Model]] = set()


def loaded_inputs(instance: models.Model) -> tuple[Any, ...] | None:
    """The adapter's input fields' values when ``instance`` was loaded or last saved (a file
    by its name; see ``ProductAdapter.tracked_fields``), or None when they are not known."""
    return instance.__dict__.get(LOADED_INPUTS)


def inputs_saved(instance: models.Model, update_fields: Any = None) -> None:
    """After a save: the saved fields' values are now what the database holds (all of them,
    or those of ``update_fields``)."""
    adapter = _registry.get(_concrete(type(instance)))
    if adapter is None or adapter.tracked_fields is None:
        return
    now = adapter.tracked_values(instance)
    if now is None:
        instance.__dict__.pop(LOADED_INPUTS, None)
        return
    if update_fields is not None:
        before = loaded_inputs(instance)
        if before is None:
            return  # the other fields' stored values are not known
        saved = set(update_fields)
        now = tuple(
            value if name in saved or attname in saved else old
            for (name, attname), value, old in zip(adapter.tracked_fields, now, before, strict=True)
        )
    instance.__dict__[LOADED_INPUTS] = now


def _inputs_loaded(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    # post_init: a few attribute reads, nothing from the database or the storage.
    adapter = _registry.get(_concrete(sender))
    if adapter is not None:
        values = adapter.tracked_values(instance)
        if values is not None:
            instance.__dict__[LOADED_INPUTS] = values


def _track(model: type[models.Model]) -> None:
    # Connected per model (not for every sender): other models' instances pay nothing.
    post_init.connect(_inputs_loaded, sender=model, weak=False, dispatch_uid=_TRACK_UID)
    _tracked.add(model)


def _proxies_of(model: type[models.Model]) -> list[type[models.Model]]:
    return [
        m
        for models_of_app in apps.all_models.values()
        for m in models_of_app.values()
        if m._meta.proxy and m is not model and _concrete(m) is model
    ]


def _proxy_prepared(sender: type[models.Model], **kwargs: Any) -> None:
    """A proxy of a tracked model defined after its registration is tracked too."""
    concrete = _concrete(sender)
    if sender._meta.proxy and sender is not concrete and concrete in _tracked:
        _track(sender)


class_prepared.connect(_proxy_prepared, dispatch_uid="prodcat_django.track_proxies")
