"""Fixtures of the Oscar add-on's tests: an Oscar catalogue made the Oscar way (a product
class, a category tree from breadcrumbs, products, then their images), and staff users.

The tiny random checkpoint's labels (tests.conftest.TEST_LABELS) are leaves of the tree, so
every suggestion matches an Oscar category.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.base import ContentFile
from oscar.core.loading import get_model

from tests.shop_data import media_root, png_bytes  # noqa: F401 - media_root is autouse

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductCategory = get_model("catalogue", "ProductCategory")
ProductImage = get_model("catalogue", "ProductImage")
Category = get_model("catalogue", "Category")

#: The shop's tree; the leaves are the test checkpoint's labels.
BREADCRUMBS = (
    "Clothing > Shoes",
    "Accessories > Watches",
    "Accessories > Bags",
    "Home > Home Decor",
    "Uncategorised",
)


@pytest.fixture
def oscar_categories(db: None) -> dict[str, Any]:
    """``{leaf name: Category}``, created with Oscar's ``create_from_breadcrumbs``."""
    from oscar.apps.catalogue.categories import create_from_breadcrumbs

    return {crumbs.split(" > ")[-1]: create_from_breadcrumbs(crumbs) for crumbs in BREADCRUMBS}


@pytest.fixture
def product_class(db: None) -> Any:
    return ProductClass.objects.create(name="Goods", requires_shipping=False, track_stock=False)


@pytest.fixture
def make_oscar_product(product_class: Any, oscar_categories: dict[str, Any]) -> Callable[..., Any]:
    """Creates a product as Oscar code does: the product, its category rows, then each image
    as a ``ProductImage`` (separate saves, in that order)."""

    def make(
        title: str = "Leather ankle boots",
        *,
        images: tuple[bytes, ...] = (),
        categories: tuple[str, ...] = ("Uncategorised",),
        structure: str = Product.STANDALONE,
        parent: Any = None,
    ) -> Any:
        product = Product.objects.create(
            title=title,
            structure=structure,
            parent=parent,
            product_class=None if structure == Product.CHILD else product_class,
        )
        for name in categories if structure != Product.CHILD else ():
            ProductCategory.objects.create(product=product, category=oscar_categories[name])
        for order, data in enumerate(images):
            image = ProductImage(product=product, display_order=order)
            image.original.save(f"photo{order}.png", ContentFile(data), save=False)
            image.save()
        return product

    return make


def make_staff(username: str, *permissions: str, **fields: Any) -> Any:
    """A staff user (password "pw") with exactly these ``app_label.codename`` permissions."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    fields.setdefault("is_staff", True)
    user = get_user_model().objects.create_user(
        username, email=f"{username}@example.com", password="pw", **fields
    )
    for perm in permissions:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return get_user_model().objects.get(pk=user.pk)  # fresh: no stale permission cache


#: What a catalogue manager may do in Oscar's dashboard and admin.
CATALOGUE_PERMISSIONS = (
    "catalogue.view_product",
    "catalogue.add_product",
    "catalogue.change_product",
    "catalogue.view_category",
    "prodcat_django.view_categorysuggestion",
)


@pytest.fixture
def reviewer(db: None) -> Any:
    return make_staff(
        "reviewer", *CATALOGUE_PERMISSIONS, "prodcat_django.review_categorysuggestion"
    )


@pytest.fixture
def viewer(db: None) -> Any:
    """Staff who may see suggestions but not decide them."""
    return make_staff("viewer", *CATALOGUE_PERMISSIONS)


@pytest.fixture
def photo() -> bytes:
    return png_bytes("saddlebrown", size=(96, 96))
