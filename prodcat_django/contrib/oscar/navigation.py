"""The add-on's entry in Oscar's dashboard menu (``OSCAR_DASHBOARD_NAVIGATION``).

Imported from the shop's settings module, so it imports no models and nothing of Oscar's::

    from oscar.defaults import *
    from prodcat_django.contrib.oscar.navigation import with_suggestions_menu

    OSCAR_DASHBOARD_NAVIGATION = with_suggestions_menu(OSCAR_DASHBOARD_NAVIGATION)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.translation import gettext_lazy as _

#: The review page's URL name (the app's namespace is ``prodcat_oscar``).
LIST_URL_NAME = "prodcat_oscar:prodcat-suggestion-list"
#: The menu entry goes after this one (Oscar's "Catalogue > Products").
PRODUCTS_URL_NAME = "dashboard:catalogue-product-list"


def access_fn(
    user: Any, url_name: str | None, url_args: Any = None, url_kwargs: Any = None
) -> bool:
    """Whether ``user`` sees the menu entry: the same permissions as the page it links to
    (``ProdcatOscarConfig.permissions_map``), checked as Oscar's dashboard checks its own.

    Oscar's ``default_access_fn`` would work too once the app's URLs are included; this one
    does not depend on how the shop mounted them.
    """
    from django.apps import apps
    from oscar.views.decorators import check_permissions

    config = apps.get_app_config("prodcat_oscar")
    return check_permissions(user, config.get_permissions(url_name))


def menu_entry(label: Any = None) -> dict[str, Any]:
    """The menu item: a link to the review page, shown to those allowed to open it."""
    return {
        "label": label if label is not None else _("Category suggestions"),
        "url_name": LIST_URL_NAME,
        "access_fn": access_fn,
    }


def with_suggestions_menu(
    navigation: Sequence[dict[str, Any]], *, label: Any = None
) -> list[dict[str, Any]]:
    """A copy of ``navigation`` with the entry added after Oscar's "Products" (under
    "Catalogue"), or at the end when the shop's menu has no such item. Idempotent."""
    entry = menu_entry(label)
    result = [_copy_item(item) for item in navigation]
    if any(_contains(item, LIST_URL_NAME) for item in result):
        return result
    for item in result:
        children = item.get("children")
        if not children:
            continue
        names = [child.get("url_name") for child in children]
        if PRODUCTS_URL_NAME in names:
            children.insert(names.index(PRODUCTS_URL_NAME) + 1, entry)
            return result
    result.append({**entry, "icon": "fas fa-tags"})
    return result


def _copy_item(item: dict[str, Any]) -> dict[str, Any]:
    # Labels are lazy translations: copy the structure without evaluating them.
    copied = dict(item)
    if "children" in copied:
        copied["children"] = [_copy_item(child) for child in copied["children"]]
    return copied


def _contains(item: dict[str, Any], url_name: str) -> bool:
    return item.get("url_name") == url_name or any(
        _contains(child, url_name) for child in item.get("children", ())
    )
