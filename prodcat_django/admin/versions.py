"""The model-versions page: every version with its held-out metrics side by side, one version's
comparison with the active one and its most confused category pairs, and activate / roll back
buttons for users with ``prodcat_django.activate_modelversion``. Also the label mappings of the
built-in model, editable. Registered on ``admin.site`` by :mod:`prodcat_django.admin`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from prodcat_django.models import ModelVersion
from prodcat_django.training import store
from prodcat_django.training.trainer import describe_comparison


def _held_out(row: ModelVersion) -> dict[str, Any]:
    return (row.metrics.get("test") or {}).get("full") or {}


def _pct(value: Any) -> str:
    return "" if value is None else f"{value:.2%}"


class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "held_out_accuracy",
        "auto_accept_precision",
        "auto_accept_coverage",
        "dataset_size",
        "gate",
        "trained_at",
        "trained_by_name",
    ]
    list_filter = ["status", "builtin"]
    ordering = ["-created_at", "-pk"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        # No usable built-in checkpoint: E003 says why; the page lists the other versions.
        with contextlib.suppress(Exception):
            store.ensure_builtin()
        return super().changelist_view(request, extra_context)

    @admin.display(description=gettext_lazy("held-out accuracy"))
    def held_out_accuracy(self, row: ModelVersion) -> str:
        return _pct(_held_out(row).get("accuracy"))

    @admin.display(description=gettext_lazy("auto-accept precision"))
    def auto_accept_precision(self, row: ModelVersion) -> str:
        return _pct((_held_out(row).get("auto_accept") or {}).get("precision"))

    @admin.display(description=gettext_lazy("auto-accept coverage"))
    def auto_accept_coverage(self, row: ModelVersion) -> str:
        return _pct((_held_out(row).get("auto_accept") or {}).get("coverage"))

    @admin.display(description=gettext_lazy("gate"))
    def gate(self, row: ModelVersion) -> str:
        if not row.comparison:
            return ""
        return _("passed") if row.comparison.get("passed") else _("not passed")

    def can_activate(self, request: HttpRequest) -> bool:
        return request.user.has_perm(store.ACTIVATE_PERMISSION)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/activate/",
                view(require_POST(self.activate_view)),
                name="prodcat_django_modelversion_activate",
            ),
            path(
                "rollback/",
                view(require_POST(self.rollback_view)),
                name="prodcat_django_modelversion_rollback",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        row = get_object_or_404(ModelVersion, pk=unquote(object_id))
        if not self.has_view_permission(request, row):
            raise PermissionDenied
        active = store.active_version()
        sides = [("this version", row)]
        if active is not None and active.pk != row.pk:
            sides.append(("active", active))
        conditions = sorted({c for _, r in sides for c in (r.metrics.get("test") or {})})
        table = [
            {
                "condition": condition,
                "cells": [
                    _pct(((r.metrics.get("test") or {}).get(condition) or {}).get("accuracy"))
                    for _, r in sides
                ],
            }
            for condition in conditions
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": str(row),
            "row": row,
            "sides": [name for name, _ in sides],
            "side_rows": [r for _, r in sides],
            "table": table,
            "comparison": describe_comparison(row.comparison) if row.comparison else [],
            "confusion_pairs": row.metrics.get("confusion_pairs") or [],
            "left_out": (row.metrics.get("dataset") or {}).get("left_out") or [],
            "can_activate": self.can_activate(request) and not row.is_active,
            "can_rollback": self.can_activate(request) and row.is_active,
            "activate_url": reverse(
                f"{self.admin_site.name}:prodcat_django_modelversion_activate", args=[row.pk]
            ),
            "rollback_url": reverse(f"{self.admin_site.name}:prodcat_django_modelversion_rollback"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/prodcat_django/modelversion/detail.html", context)

    def activate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.can_activate(request):
            raise PermissionDenied
        row = get_object_or_404(ModelVersion, pk=unquote(object_id))
        try:
            store.activate(row)
        except store.StoreError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("%(version)s is now active.") % {"version": row})
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:prodcat_django_modelversion_change", args=[row.pk])
        )

    def rollback_view(self, request: HttpRequest) -> HttpResponse:
        if not self.can_activate(request):
            raise PermissionDenied
        try:
            row = store.rollback()
        except store.StoreError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Rolled back: %(version)s is active.") % {"version": row})
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:prodcat_django_modelversion_changelist")
        )


class LabelMappingAdmin(admin.ModelAdmin):
    """Which shop category each label of the built-in model means (by pk: survives renames)."""

    list_display = ["label", "model_name", "category_type", "category_pk", "updated_at"]
    list_editable = ["category_pk"]
    list_filter = ["model_name", "category_type"]
    search_fields = ["label"]
