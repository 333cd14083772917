"""The product adapter for Oscar's ``catalogue.Product`` (and forks of Oscar's catalogue app).

How Oscar models a product, and what the adapter does with it:

- ``structure`` is standalone, parent or child. Children (variants) have no categories of
  their own (Oscar forbids them) and often no title: they are never suggested for. Parents
  and standalone products are.
- The title is ``get_title()``; the image is the product's first ``ProductImage`` by
  ``display_order`` (Oscar's primary image), a separate model saved after the product: its
  saves and deletes request a new suggestion (``related_inputs``).
- Categories are a many-to-many through ``ProductCategory`` to a treebeard ``MP_Node``
  ``Category``. Accepting adds the category and removes placeholders (Oscar's dashboard wants
  at least one category, so shops file new products under "Uncategorised"); other categories
  the product has stay. Labels are Oscar's full paths, "Clothing > Shirts".
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from oscar.core.loading import get_model

from prodcat_django.adapters import ImageSource, ProductAdapter, RelatedInput


def _image_product(image: models.Model) -> models.Model | None:
    return image.product


class OscarProductAdapter(ProductAdapter):
    """Reads and writes Oscar products. Subclass it to change ``placeholder_names`` (compared
    without case with the category's name) or the text (e.g. to add the description)."""

    category_model = "catalogue.Category"
    related_inputs = (
        RelatedInput(
            "catalogue.ProductImage",
            product=_image_product,
            fields=("original", "display_order", "product"),
        ),
    )
    #: Names of categories that mean "not categorised yet".
    placeholder_names: tuple[str, ...] = ("Uncategorised", "Uncategorized")

    # --- which products ---------------------------------------------------------------------

    def should_suggest(self, product: models.Model) -> bool:
        return product.structure != product.CHILD

    def suggestable(self, queryset: models.QuerySet) -> models.QuerySet:
        return queryset.exclude(structure=queryset.model.CHILD)

    # --- inputs -----------------------------------------------------------------------------

    def get_text(self, product: models.Model) -> str:
        return str(product.get_title() or "")

    def get_image(self, product: models.Model) -> ImageSource | None:
        """The primary image: the lowest ``display_order`` (the first uploaded on a tie)."""
        if product.pk is None:
            return None
        image = product.images.order_by("display_order", "pk").first()
        return ImageSource.from_field(image.original) if image is not None else None

    # --- categories -------------------------------------------------------------------------

    def get_categories(self, product: models.Model) -> list[str]:
        if product.pk is None:
            return []
        through = self._through()
        return [
            str(pk)
            for pk in through.objects.filter(product=product)
            .order_by("pk")
            .values_list("category_id", flat=True)
        ]

    def is_placeholder(self, key: str) -> bool:
        return bool(self._placeholder_keys([key]))

    def apply_category(self, product: models.Model, category: Any) -> None:
        """Add ``category`` to the product's categories and drop the placeholders."""
        if product.structure == product.CHILD:
            raise ValidationError(
                "A child product (variant) takes its categories from its parent; file the "
                "parent instead.",
                code="bad_category",
            )
        through = self._through()
        with transaction.atomic():
            through.objects.get_or_create(product=product, category=category)
            current = self.get_categories(product)
            placeholders = self._placeholder_keys(current) - {str(category.pk)}
            if placeholders:
                # Deleted through the model, so Oscar's ProductCategory receivers run.
                through.objects.filter(product=product, category_id__in=placeholders).delete()

    def _placeholder_keys(self, keys: list[str]) -> set[str]:
        keys = [k for k in keys if k]
        if not keys or not self.placeholder_names:
            return set()
        names = models.Q()
        for name in self.placeholder_names:
            names |= models.Q(name__iexact=name)
        found = self.category_model._default_manager.filter(names, pk__in=keys)
        return {str(pk) for pk in found.values_list("pk", flat=True)}

    def _through(self) -> type[models.Model]:
        return get_model("catalogue", "ProductCategory")
