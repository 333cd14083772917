"""The shop's admin: products get prodcat's "Suggest categories" action and column."""

from django.contrib import admin

from example_shop.catalog.models import Category, Product
from prodcat_django.admin import SuggestCategoriesAdminMixin


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(SuggestCategoriesAdminMixin, admin.ModelAdmin):
    # The mixin appends its category_suggestion column and adds the action.
    list_display = ["title", "category", "created_at"]
    list_filter = ["category"]
    list_select_related = ["category"]
    search_fields = ["title"]
    autocomplete_fields = ["category"]
