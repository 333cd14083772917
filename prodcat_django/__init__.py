"""prodcat_django: category suggestions for Django product catalogues.

Importing this package is cheap: it pulls in neither Django models nor torch, so
``prodcat_django.register`` can be called from any ``models.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prodcat_django.adapters import ProductAdapter

__version__ = "0.1.0"

__all__ = ["__version__", "register"]


def register(model: type, adapter: Any = None, **options: Any) -> ProductAdapter:
    """Register ``model`` as a product model, with an adapter class or field names (see
    ``prodcat_django.registry``)."""
    from prodcat_django.registry import register as _register

    return _register(model, adapter, **options)
