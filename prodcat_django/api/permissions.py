"""Who may call which endpoint. Every view names its classes; the project's defaults never apply.

- ``POST suggest/``: an authenticated user with ``prodcat_django.view_categorysuggestion`` (a
  merchant who may see suggestions may ask the model directly; the endpoint writes nothing).
- ``POST products/<pk>/suggestions/`` and ``POST suggestions/<id>/retry/``:
  ``<app_label>.change_<model>`` on the product's model, the same right the admin asks for
  before a product can be edited.
- ``GET products/<pk>/suggestions/`` and ``GET suggestions/<id>/``:
  ``prodcat_django.view_categorysuggestion`` and ``view`` or ``change`` permission on the
  product's model.
- ``POST suggestions/<id>/accept/``, and ``reject/`` with a correction:
  ``prodcat_django.review_categorysuggestion`` **and** ``change`` permission on the product's
  model (both set the product's category; the service layer checks). ``reject/`` without a
  correction: the review permission alone.

Superusers pass every check, as Django's ``has_perm`` has them do.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_permission_codename
from django.db.models import Model
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

VIEW_SUGGESTION_PERM = "prodcat_django.view_categorysuggestion"
REVIEW_SUGGESTION_PERM = "prodcat_django.review_categorysuggestion"


class _RequiresPerm(BasePermission):
    """Authenticated (else 401/403 per the authenticator) and holding ``perm`` (else 403)."""

    perm: str = ""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if user.has_perm(self.perm):
            return True
        self.message = f"You need the {self.perm!r} permission."
        return False


class CanViewSuggestions(_RequiresPerm):
    perm = VIEW_SUGGESTION_PERM


class CanReviewSuggestions(_RequiresPerm):
    perm = REVIEW_SUGGESTION_PERM


def _product_perm(action: str, model: type[Model]) -> str:
    return f"{model._meta.app_label}.{get_permission_codename(action, model._meta)}"


class CanChangeProduct(BasePermission):
    """``change`` permission on the product model that ``view.get_product_model()`` resolved."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        perm = _product_perm("change", view.get_product_model())
        if user.has_perm(perm):
            return True
        self.message = f"You need the {perm!r} permission."
        return False


class CanViewProduct(BasePermission):
    """``view`` or ``change`` permission on the product model (as the admin lets either see)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        model = view.get_product_model()
        perms = [_product_perm("view", model), _product_perm("change", model)]
        if any(user.has_perm(perm) for perm in perms):
            return True
        self.message = f"You need the {perms[0]!r} or {perms[1]!r} permission."
        return False


def check_product_view_permission(user: Any, model: type[Model] | None) -> None:
    """403 unless ``user`` has ``view`` or ``change`` permission on the product model."""
    from rest_framework.exceptions import PermissionDenied

    if model is None:
        raise PermissionDenied("The product model of this suggestion no longer exists.")
    perms = [_product_perm("view", model), _product_perm("change", model)]
    if not any(user.has_perm(perm) for perm in perms):
        raise PermissionDenied(f"You need the {perms[0]!r} or {perms[1]!r} permission.")
