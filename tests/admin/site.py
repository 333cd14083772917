"""Admin sites of the admin tests: the test shop's product admin, two ways.

- ``site`` (namespace "admin"): prodcat's review admins, model versions and label mappings,
  plus a product admin that uses ``SuggestCategoriesAdminMixin``, as a shop writing its own
  admin would.
- ``legacy_site`` (namespace "legacy"): a plain product admin registered as a third-party app
  would, later given the action and column by ``enable_suggestions``.
- ``prefetch_site`` (namespace "prefetch"): a product admin whose queryset uses
  ``prefetch_related()``, as django-oscar's ``ProductAdmin`` does.
- ``class_site`` (namespace "classy"): a third-party product admin class, with its own list,
  filter and explicit ``fields``, given prodcat by ``enable_suggestions(TheClass, Product)``
  before it is registered; with the review admin, so rows get their Accept.
"""

from django.contrib import admin

from prodcat_django.admin import (
    INDEX_TEMPLATE,
    CategorySuggestionAdmin,
    LabelMappingAdmin,
    ModelVersionAdmin,
    SuggestCategoriesAdminMixin,
    SuggestionBatchAdmin,
    SuggestionDecisionAdmin,
    enable_suggestions,
)
from prodcat_django.models import (
    CategorySuggestion,
    LabelMapping,
    ModelVersion,
    SuggestionBatch,
    SuggestionDecision,
)
from tests.testapp.models import Category, Product

site = admin.AdminSite(name="admin")
site.index_template = INDEX_TEMPLATE
site.register(CategorySuggestion, CategorySuggestionAdmin)
site.register(SuggestionBatch, SuggestionBatchAdmin)
site.register(SuggestionDecision, SuggestionDecisionAdmin)
site.register(ModelVersion, ModelVersionAdmin)
site.register(LabelMapping, LabelMappingAdmin)


@admin.register(Category, site=site)
class CategoryAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Product, site=site)
class ProductAdmin(SuggestCategoriesAdminMixin, admin.ModelAdmin):
    list_display = ["title", "category"]
    list_select_related = ["category"]
    search_fields = ["title"]


class LegacyProductAdmin(admin.ModelAdmin):
    """Knows nothing about prodcat; defines its own action."""

    list_display = ["title", "price"]
    actions = ["mark_free"]

    @admin.action(description="Set the price to zero")
    def mark_free(self, request, queryset):
        queryset.update(price=0)


legacy_site = admin.AdminSite(name="legacy")
legacy_site.register(SuggestionBatch, SuggestionBatchAdmin)
legacy_site.register(Product, LegacyProductAdmin)
enable_suggestions(legacy_site, Product)


class PrefetchingProductAdmin(SuggestCategoriesAdminMixin, admin.ModelAdmin):
    list_display = ["title", "category"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("category")
            .prefetch_related("fk_suggestions")
        )


prefetch_site = admin.AdminSite(name="prefetch")
prefetch_site.register(SuggestionBatch, SuggestionBatchAdmin)
prefetch_site.register(Product, PrefetchingProductAdmin)


class ThirdPartyProductAdmin(admin.ModelAdmin):
    """A product admin from another app: its own columns, filter and explicit fields."""

    list_display = ["title", "category"]
    list_filter = ["category"]
    fields = ["title", "image", "category", "price"]
    search_fields = ["title"]


enable_suggestions(ThirdPartyProductAdmin, Product)

class_site = admin.AdminSite(name="classy")
class_site.index_template = INDEX_TEMPLATE
class_site.register(CategorySuggestion, CategorySuggestionAdmin)
class_site.register(SuggestionBatch, SuggestionBatchAdmin)
class_site.register(Category, CategoryAdmin)
class_site.register(Product, ThirdPartyProductAdmin)
