"""System checks (``manage.py check``), ids ``prodcat.E0xx`` (errors) and ``prodcat.W0xx``.

- W001 no model registered with ``prodcat_django.register()``
- E001 what ``register()`` checks at once (fields that do not exist or have the wrong type, an
  adapter missing a method): it raises ``ImproperlyConfigured`` then, since Celery workers
  never run the checks; this repeats it for an adapter changed since
- E002 what needs loaded apps: a category model or related input model that cannot be
  resolved, a ``category_model=`` that is not the category field's target
- E003 the checkpoint is missing, unreadable or fails the loader's validation (hashes, the
  safetensors header, the classifier head against the labels, no symlink out of the folder)
- W004 the ML packages are missing (this process can queue but not run suggestions)
- W005 no Celery app is configured while ``AUTO_SUGGEST`` is on
- E006 ``settings.PRODCAT`` is not a dict; W006 unknown keys in it
- E007 ``CATEGORY_MATCHER`` cannot be imported
- W007 RabbitMQ broker without publisher confirms (a broker dying right after a save loses the
  task until the sweep notices)
- W008 Redis broker whose ``visibility_timeout`` is below the longest task's hard time limit
  (a long task would be delivered a second time while it runs)
- W009 labels of the active model that reach no shop category; W010 shop categories (that
  products are filed under) the active model cannot predict. These read the database, so they
  run with ``manage.py check --database default`` (Django's ``database`` tag), not on every
  ``runserver`` start.
- W011 the API's throttles (``API_THROTTLE_RATE``, ``AUTH_FAILURE_RATE``) count in a
  per-process cache (LocMem) or none (Dummy): each web process counts alone, or nothing is
  counted, so password guessing is not really limited

Nothing here imports torch: the checkpoint is verified by the torch-free
``prodcat_django.ml.manifest`` and the result is cached per path and modification times, so
``runserver`` reloads do not hash the weights again.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from django.core import checks

from prodcat_django.conf import prodcat_settings

ML_PACKAGES = ("torch", "transformers", "safetensors", "numpy")

_checkpoint_cache: dict[tuple[str, tuple[float, ...]], str | None] = {}


@checks.register("prodcat")
def check_registry(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from prodcat_django.registry import registered_adapters

    adapters = registered_adapters()
    if not adapters:
        return [
            checks.Warning(
                "No product model is registered with prodcat_django.",
                hint="Call prodcat_django.register(Product, title_field=..., image_field=..., "
                "category_field=...) or register(Product, adapter=...) in your models.py or "
                "AppConfig.ready().",
                id="prodcat.W001",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for adapter in adapters:
        problems = adapter.problems()
        errors.extend(
            checks.Error(problem, obj=adapter.model, id="prodcat.E001") for problem in problems
        )
        if not problems:
            errors.extend(adapter.check())
    return errors


@checks.register("prodcat")
def check_checkpoint(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from prodcat_django.classifier import checkpoint_path

    try:
        path = checkpoint_path()
    except Exception as exc:  # default_checkpoint_dir() raises when nothing is shipped
        return [_checkpoint_error(str(exc))]
    problem = _verify_cached(path)
    return [] if problem is None else [_checkpoint_error(problem)]


def _checkpoint_error(problem: str) -> checks.Error:
    return checks.Error(
        f"The prodcat checkpoint is unusable: {problem}",
        hint="Set PRODCAT['CHECKPOINT'] to a checkpoint directory (or None for the shipped one) "
        "and run `manage.py prodcat_verify_checkpoint` for details.",
        id="prodcat.E003",
    )


def _verify_cached(path: Path) -> str | None:
    """None when the checkpoint verifies, else the problem; cached per path and mtimes."""
    try:
        files = sorted(p.stat().st_mtime for p in path.iterdir() if not p.is_dir())
        stamps = (path.stat().st_mtime, *files)
    except OSError:
        return f"{path} does not exist or cannot be read"
    key = (str(path), stamps)
    if key not in _checkpoint_cache:
        from prodcat_django.ml.manifest import CheckpointError, verify_checkpoint

        try:
            verify_checkpoint(path)
        except CheckpointError as exc:
            _checkpoint_cache[key] = str(exc)
        else:
            _checkpoint_cache[key] = None
    return _checkpoint_cache[key]


@checks.register("prodcat")
def check_ml_packages(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    missing = [name for name in ML_PACKAGES if importlib.util.find_spec(name) is None]
    if not missing:
        return []
    return [
        checks.Warning(
            f"The ML packages {', '.join(missing)} are not installed: this process can queue "
            "suggestions but not compute them.",
            hint='Workers need them: pip install "prodcat-django[ml]" torch==2.13.0',
            id="prodcat.W004",
        )
    ]


@checks.register("prodcat")
def check_celery(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if not prodcat_settings.AUTO_SUGGEST:
        return []
    from celery import current_app

    app = current_app._get_current_object()
    # With no app created, Celery falls back to an unconfigured "default" app.
    if app.set_as_current or app.main != "default":
        return []
    return [
        checks.Warning(
            "PRODCAT['AUTO_SUGGEST'] is on but no Celery app is configured, so suggestions "
            "will stay pending.",
            hint="Create a Celery app configured from Django settings and import it in your "
            "project's __init__.py (see the Celery 'First steps with Django' guide), or set "
            "PRODCAT['AUTO_SUGGEST'] = False.",
            id="prodcat.W005",
        )
    ]


@checks.register("prodcat")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    try:
        unknown = prodcat_settings.unknown_keys()
    except TypeError as exc:
        return [checks.Error(str(exc), hint="PRODCAT = {'TOP_K': 3, ...}", id="prodcat.E006")]
    if unknown:
        from prodcat_django.conf import DEFAULTS

        messages.append(
            checks.Warning(
                f"Unknown keys in settings.PRODCAT: {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="prodcat.W006",
            )
        )
    from prodcat_django.matching import get_matcher

    try:
        matcher = get_matcher()
    except ImportError as exc:
        matcher, problem = None, str(exc)
    else:
        problem = "" if callable(matcher) else f"{matcher!r} is not callable"
    if problem:
        messages.append(
            checks.Error(
                f"PRODCAT['CATEGORY_MATCHER'] is unusable: {problem}",
                hint="Give the dotted path of a function (label, category_model) -> category.",
                id="prodcat.E007",
            )
        )
    return messages


@checks.register("prodcat")
def check_broker_options(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """App-level Celery settings prodcat's recovery relies on (tasks carry the rest)."""
    from celery import current_app

    from prodcat_django.timeouts import task_time_limits

    conf = current_app._get_current_object().conf
    url = str(conf.broker_url or "")
    options = conf.broker_transport_options or {}
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    messages: list[checks.CheckMessage] = []
    if scheme in ("amqp", "amqps", "pyamqp") and not options.get("confirm_publish"):
        messages.append(
            checks.Warning(
                "The Celery broker is RabbitMQ without publisher confirms: a task published "
                "just before the broker dies is lost, and only the sweep sends it again.",
                hint="CELERY_BROKER_TRANSPORT_OPTIONS = {'confirm_publish': True}",
                id="prodcat.W007",
            )
        )
    if scheme in ("redis", "rediss"):
        visibility = float(options.get("visibility_timeout", 3600))
        _soft, hard = task_time_limits(int(prodcat_settings.BULK_CHUNK_SIZE))
        if visibility < hard:
            messages.append(
                checks.Warning(
                    f"The Redis broker's visibility_timeout ({visibility:g} s) is below the "
                    f"hard time limit of a BULK_CHUNK_SIZE task ({hard:g} s): such a task "
                    "would be delivered again while it still runs.",
                    hint=f"CELERY_BROKER_TRANSPORT_OPTIONS = {{'visibility_timeout': "
                    f"{int(hard) + 60}}} or more. Recovery from a dead worker does not wait "
                    "for it (leases and the sweep do that).",
                    id="prodcat.W008",
                )
            )
    return messages


@checks.register("prodcat", checks.Tags.database)
def check_label_coverage(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.db import DatabaseError

    from prodcat_django.registry import registered_adapters
    from prodcat_django.training.labels import LabelResolver, category_label
    from prodcat_django.training.store import active_version, builtin_checkpoint

    # Django runs database checks only for the databases named (manage.py check --database).
    if "default" not in (kwargs.get("databases") or ()):
        return []
    messages: list[checks.CheckMessage] = []
    try:
        row = active_version()
        if row is None or row.builtin or not row.label_map:
            from prodcat_django.ml.manifest import CheckpointError, read_checkpoint

            try:
                info = read_checkpoint(builtin_checkpoint())
            except CheckpointError:
                return []  # E003 reports it
            name, labels = info.name, list(info.labels)
        else:
            name, labels = row.name, list(row.label_map)
        for spec in registered_adapters():
            if row is not None and row.product_model and row.product_model != spec.label:
                continue
            if spec.category_model is None or not spec.category_field:
                continue  # category names, or no queryable category field
            resolver = LabelResolver(row, name, spec.category_model, record=False)
            coverage = resolver.coverage(labels, filed_categories(spec))
            if coverage["unmatched_labels"]:
                shown = coverage["unmatched_labels"]
                messages.append(
                    checks.Warning(
                        f"{len(shown)} label(s) of the active model {name} reach no category of "
                        f"{spec.category_model._meta.label}: {', '.join(map(str, shown[:15]))}"
                        + (" ..." if len(shown) > 15 else ""),
                        hint="Map them to categories in the admin (Label mappings), or train "
                        "the shop's own model with manage.py prodcat_train.",
                        obj=spec.model,
                        id="prodcat.W009",
                    )
                )
            if coverage["unreachable_categories"]:
                shown = [category_label(c) for c in coverage["unreachable_categories"]]
                messages.append(
                    checks.Warning(
                        f"The active model {name} cannot predict {len(shown)} categor"
                        f"{'y' if len(shown) == 1 else 'ies'} of {spec.label}: "
                        f"{', '.join(shown[:15])}" + (" ..." if len(shown) > 15 else ""),
                        hint="Train the shop's own model (manage.py prodcat_train) once these "
                        "categories have products.",
                        obj=spec.model,
                        id="prodcat.W010",
                    )
                )
    except DatabaseError:
        return []  # not migrated yet: migrate reports what matters
    return messages


def filed_categories(spec: Any) -> list[Any]:
    """The categories products are filed under (all categories when none is)."""
    lookup = spec.category_field
    used = (
        spec.model._default_manager.exclude(**{f"{lookup}__isnull": True})
        .order_by()
        .values_list(lookup, flat=True)
        .distinct()
    )
    manager = spec.category_model._default_manager
    filed = list(manager.filter(pk__in=list(used)))
    return filed or list(manager.all())


#: Cache backends that do not share counts between processes.
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register("prodcat")
def check_throttle_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.apps import apps
    from django.conf import settings

    if not apps.is_installed("rest_framework"):
        return []
    rates = {
        name: getattr(prodcat_settings, name) for name in ("API_THROTTLE_RATE", "AUTH_FAILURE_RATE")
    }
    on = [name for name, rate in rates.items() if rate]
    backend = (getattr(settings, "CACHES", {}).get("default") or {}).get(
        "BACKEND", PER_PROCESS_CACHES[0]
    )
    if not on or backend not in PER_PROCESS_CACHES:
        return []
    return [
        checks.Warning(
            f"prodcat's API throttles ({', '.join(on)}) count in the default cache, which is "
            f"{backend.rsplit('.', 1)[-1]}: "
            + (
                "nothing is counted, so nothing is throttled."
                if backend.endswith("DummyCache")
                else "each web process counts alone, so N processes allow N times the rate."
            ),
            hint="Give CACHES['default'] a shared backend (Redis, Memcached, the database), or "
            "set the rates to None where another layer (the web server) limits them.",
            id="prodcat.W011",
        )
    ]
