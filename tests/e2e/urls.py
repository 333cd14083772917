"""URLs of the end-to-end tests: an admin with the test shop's product admin, and the API.

tests/testapp registers no admin (the unit-test admin sites live in tests/admin), so the
e2e tests register the product admin the way a shop would: with prodcat's mixin.
"""

from django.contrib import admin
from django.urls import include, path

from prodcat_django.admin import (
    INDEX_TEMPLATE,
    CategorySuggestionAdmin,
    SuggestCategoriesAdminMixin,
    SuggestionBatchAdmin,
)
from prodcat_django.models import CategorySuggestion, SuggestionBatch
from tests.testapp.models import Category, Product

site = admin.AdminSite(name="admin")
site.index_template = INDEX_TEMPLATE  # how many wait for review, and the health warning
site.register(CategorySuggestion, CategorySuggestionAdmin)
site.register(SuggestionBatch, SuggestionBatchAdmin)
site.register(Category)


@admin.register(Product, site=site)
class ProductAdmin(SuggestCategoriesAdminMixin, admin.ModelAdmin):
    list_display = ["title", "category"]
    fields = ["title", "image", "category", "price"]


urlpatterns = [
    path("admin/", site.urls),
    path("api/prodcat/", include("prodcat_django.api.urls")),
]
