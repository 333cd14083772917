"""The add-on's app config: an Oscar dashboard app, so its pages use Oscar's permission
machinery (``permissions_map``, ``permissions_required``) and its login page."""

from __future__ import annotations

from typing import Any

from django.urls import path
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from oscar.core.application import OscarDashboardConfig

#: Viewing the review page: staff who may see suggestions (Oscar ANDs a list's entries).
VIEW_PERMISSIONS = ["is_staff", "prodcat_django.view_categorysuggestion"]
#: Accepting or rejecting: the review permission, and changing products (it files them).
REVIEW_PERMISSIONS = [
    "is_staff",
    "prodcat_django.review_categorysuggestion",
    "catalogue.change_product",
]


class ProdcatOscarConfig(OscarDashboardConfig):
    """Customise it the Oscar way: subclass it in the shop, point ``adapter_class`` or a view
    at your own class, and list your subclass in ``INSTALLED_APPS`` instead."""

    default = True  # apps.py also imports OscarDashboardConfig
    name = "prodcat_django.contrib.oscar"
    label = "prodcat_oscar"
    verbose_name = _("Category suggestions for Oscar")
    namespace = "prodcat_oscar"

    #: The adapter registered for ``catalogue.Product`` (unless the shop registered one).
    adapter_class: str | type = "prodcat_django.contrib.oscar.adapters.OscarProductAdapter"
    list_view: str | type = "prodcat_django.contrib.oscar.views.SuggestionListView"
    review_view: str | type = "prodcat_django.contrib.oscar.views.ReviewSuggestionView"
    category_search_view: str | type = "prodcat_django.contrib.oscar.views.CategorySearchView"

    default_permissions = VIEW_PERMISSIONS
    permissions_map = {
        "prodcat-suggestion-list": VIEW_PERMISSIONS,
        "prodcat-suggestion-review": REVIEW_PERMISSIONS,
        "prodcat-category-search": REVIEW_PERMISSIONS,
    }

    def ready(self) -> None:
        from prodcat_django.contrib.oscar import checks  # noqa: F401 - registers the checks

        self.register_product()

    def register_product(self) -> Any:
        """Register ``catalogue.Product`` with ``adapter_class`` unless the shop registered it
        itself; idempotent. Also called by the add-on's ``admin.py``, which Django's admin may
        import before this app is ready."""
        from oscar.core.loading import get_model

        from prodcat_django import register
        from prodcat_django.registry import get_adapter, is_registered

        product = get_model("catalogue", "Product")
        if not is_registered(product):
            register(product, _load(self.adapter_class))
        return get_adapter(product)

    def get_urls(self) -> list[Any]:
        urls = [
            path("", _load(self.list_view).as_view(), name="prodcat-suggestion-list"),
            path(
                "<int:pk>/review/",
                _load(self.review_view).as_view(),
                name="prodcat-suggestion-review",
            ),
            path(
                "categories/",
                _load(self.category_search_view).as_view(),
                name="prodcat-category-search",
            ),
        ]
        return self.post_process_urls(urls)


def _load(target: str | type) -> Any:
    return import_string(target) if isinstance(target, str) else target
