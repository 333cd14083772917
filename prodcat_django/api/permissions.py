"""Who may call which endpoint. Every view names its classes; the project's defaults never apply.

- ``POST suggest/`` and ``GET suggestions/<id>/``: an authenticated user with
  ``prodcat_django.view_categorysuggestion`` (a merchant who may see suggestions may ask the
  model directly; the endpoint writes nothing).
- ``POST products/<pk>/suggestions/``: ``<app_label>.change_<model>`` on the product's model,
  the same right the admin asks for before a product can be edited.
- ``POST suggestions/<id>/accept|reject/``: ``prodcat_django.review_categorysuggestion``, the
  permission the review admin's actions require.

Superusers pass every check, as Django's ``has_perm`` has them do.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_permission_codename
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


class CanChangeProduct(BasePermission):
    """``change`` permission on the product model that ``view.get_product_model()`` resolved."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        model = view.get_product_model()
        perm = f"{model._meta.app_label}.{get_permission_codename('change', model._meta)}"
        if user.has_perm(perm):
            return True
        self.message = f"You need the {perm!r} permission."
        return False
