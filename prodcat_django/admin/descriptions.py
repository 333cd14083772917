"""Category descriptions: a merchant's words about a category, embedded with its name so a
category without products is suggested from day one (issue 10)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy

from prodcat_django.models import CategoryDescription


class CategoryDescriptionAdmin(admin.ModelAdmin):
    list_display = ["category_name", "description", "updated_at"]
    search_fields = ["description", "=category_pk"]
    fields = ["category_type", "category_pk", "description"]

    @admin.display(description=gettext_lazy("category"))
    def category_name(self, obj: CategoryDescription) -> str:
        model = obj.category_type.model_class()
        found = model._default_manager.filter(pk=obj.category_pk).first() if model else None
        return str(found) if found is not None else f"#{obj.category_pk}"
