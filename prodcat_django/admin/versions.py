"""The model-versions page: every version with its held-out metrics side by side, one version's
comparison with the active one and its most confused category pairs, and activate / roll back
buttons for users with ``prodcat_django.activate_modelversion``. Also the label mappings of the
built-in model, editable. Registered on ``admin.site`` by :mod:`prodcat_django.admin`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from prodcat_django.adapters.categories import ModelCategories
from prodcat_django.admin.product import ADMIN_MEDIA
from prodcat_django.models import LabelMapping, ModelVersion
from prodcat_django.training import store
from prodcat_django.training.trainer import describe_comparison


def _held_out(row: ModelVersion) -> dict[str, Any]:
    return (row.metrics.get("test") or {}).get("full") or {}


#: The evaluation conditions (ml.train.conditions) in the merchant's words.
CONDITION_NAMES = {
    "full": gettext_lazy("title and photo"),
    "terse": gettext_lazy("short title and photo"),
    "title_only": gettext_lazy("title only"),
    "image_only": gettext_lazy("photo only"),
}
#: The order they are listed in (others after them, by name).
CONDITION_ORDER = list(CONDITION_NAMES)


def _pct(value: Any) -> str:
    return "" if value is None else f"{value:.2%}"


class ModelVersionAdmin(admin.ModelAdmin):
    # Few, short columns: no column is pushed out of sight at 1280 px beside the filters, and
    # below 700 px the rows become cards (admin.css, the version cell's class).
    list_display = [
        "model_version",
        "held_out_accuracy",
        "auto_accept",
        "products",
        "gate",
        "trained",
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

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA + forms.Media(js=["prodcat_django/list_cards.js"])

    @admin.display(description=gettext_lazy("model version"), ordering="created_at")
    def model_version(self, row: ModelVersion) -> str:
        return format_html('<span class="prodcat-card-row">{}</span>', row)

    @admin.display(description=gettext_lazy("auto-accept"))
    def auto_accept(self, row: ModelVersion) -> str:
        """Precision at the validated threshold, and the share of products it covers."""
        held = _held_out(row).get("auto_accept") or {}
        precision, coverage = held.get("precision"), held.get("coverage")
        if precision is None:
            return ""
        return _("%(precision)s right, on %(coverage)s of products") % {
            "precision": _pct(precision),
            "coverage": f"{coverage:.0%}" if coverage is not None else "?",
        }

    @admin.display(description=gettext_lazy("products"), ordering="dataset_size")
    def products(self, row: ModelVersion) -> str:
        """How many products it was trained on (nothing for the built-in model)."""
        return str(row.dataset_size) if row.dataset_size else ""

    @admin.display(description=gettext_lazy("trained"), ordering="trained_at")
    def trained(self, row: ModelVersion) -> str:
        if not row.trained_at:
            return ""
        when = date_format(timezone.localtime(row.trained_at), "SHORT_DATETIME_FORMAT")
        if row.trained_by_name:
            return _("%(when)s by %(who)s") % {"when": when, "who": row.trained_by_name}
        return when

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
        conditions = sorted(
            {c for _, r in sides for c in (r.metrics.get("test") or {})},
            key=lambda c: (CONDITION_ORDER.index(c) if c in CONDITION_ORDER else 99, c),
        )
        table = [
            {
                "condition": CONDITION_NAMES.get(condition, condition),
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
            "media": self.media,
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


#: Above this many categories a mapping's category is typed as a key, not picked from a list.
CATEGORY_CHOICES_LIMIT = 500


class LabelMappingForm(forms.ModelForm):
    """A mapping's category as a list of the shop's categories (full paths in a tree), named
    after its label for screen readers; ``choices`` is shared by the rows of one page."""

    choices: dict[int, list[tuple[str, str]] | None] = {}

    class Meta:
        model = LabelMapping
        fields = ["category_pk"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("category_pk")
        mapping = self.instance
        if field is None or not mapping.category_type_id:
            return
        name = _("Category for the label %(label)s") % {"label": mapping.label}
        choices = self._choices_for(mapping.category_type_id)
        if choices is None:
            field.widget.attrs["aria-label"] = name
            return
        current = str(mapping.category_pk or "")
        if current and current not in {key for key, _ in choices}:
            choices = [(current, _("%(key)s (no such category)") % {"key": current}), *choices]
        self.fields["category_pk"] = forms.ChoiceField(
            choices=choices,
            label=field.label,
            widget=forms.Select(attrs={"aria-label": name}),
        )

    def _choices_for(self, category_type_id: int) -> list[tuple[str, str]] | None:
        if category_type_id not in self.choices:
            model = ContentType.objects.get_for_id(category_type_id).model_class()
            found: list[tuple[str, str]] | None = None
            if model is not None:
                rows = list(model._default_manager.all()[: CATEGORY_CHOICES_LIMIT + 1])
                if len(rows) <= CATEGORY_CHOICES_LIMIT:
                    labels = ModelCategories(model).labels_of(rows)
                    found = sorted(
                        ((str(pk), label) for pk, label in labels.items()),
                        key=lambda item: item[1].lower(),
                    )
            self.choices[category_type_id] = found
        return self.choices[category_type_id]


class LabelMappingAdmin(admin.ModelAdmin):
    """Which shop category each label of the built-in model means (by pk: survives renames)."""

    list_display = ["model_label", "model_name", "category_kind", "category_pk"]
    list_editable = ["category_pk"]
    list_filter = ["model_name", ("category_type", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["label"]

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA + forms.Media(js=["prodcat_django/list_cards.js"])

    @admin.display(description=gettext_lazy("label"), ordering="label")
    def model_label(self, mapping: LabelMapping) -> str:
        # The class lets admin.css lay the rows out as cards on a narrow screen.
        return format_html('<span class="prodcat-card-row">{}</span>', mapping.label)

    @admin.display(description=gettext_lazy("category type"), ordering="category_type")
    def category_kind(self, mapping: LabelMapping) -> str:
        model = mapping.category_type.model_class()
        return str(model._meta.verbose_name) if model is not None else str(mapping.category_type)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        # One list of categories per category type and page, not one per row.
        return type("LabelMappingPageForm", (LabelMappingForm,), {"choices": {}})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "category_type":
            # The category models of registered products, not every model of the project.
            from prodcat_django.registry import registered_adapters

            models = {a.category_model for a in registered_adapters() if a.category_model}
            if models:
                ids = [ContentType.objects.get_for_model(m).pk for m in models]
                kwargs["queryset"] = ContentType.objects.filter(pk__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
