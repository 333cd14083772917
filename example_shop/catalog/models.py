"""The shop's own models; prodcat_django is told about them with ``prodcat_django.register``."""

from __future__ import annotations

from django.db import models

import prodcat_django


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    title = models.CharField(max_length=255)
    image = models.ImageField(upload_to="products/%Y/%m/", blank=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.title


prodcat_django.register(
    Product,
    title_field="title",
    image_field="image",
    category_field="category",
    category_model=Category,
)
