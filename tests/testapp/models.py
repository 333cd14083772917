"""Models of the test shop: a product registered in models.py, a "vendor" model registered
from AppConfig.ready() (with a UUID primary key), and a foreign-key suggestion model."""

import uuid

from django.db import models

import prodcat_django
from prodcat_django.models import ForeignKeySuggestionBase


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    title = models.CharField(max_length=200)
    image = models.ImageField(upload_to="products/", blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)

    def __str__(self) -> str:
        return self.title


prodcat_django.register(
    Product, title_field="title", image_field="image", category_field="category"
)


class ProductToReview(Product):
    """A proxy (like a "to review" admin would use): its saves must be seen too."""

    class Meta:
        proxy = True


class VendorItem(models.Model):
    """Stands for a third-party model: registered from TestappConfig.ready()."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.TextField()
    picture = models.ImageField(upload_to="vendor/", blank=True)
    kind = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.name


class ProductSuggestion(ForeignKeySuggestionBase):
    """Proves ForeignKeySuggestionBase works with a real foreign key."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="fk_suggestions")

    class Meta(ForeignKeySuggestionBase.Meta):
        constraints = [ForeignKeySuggestionBase.one_current_constraint("product")]
