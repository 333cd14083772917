"""Create the 16 categories of the shipped checkpoint (fashion16), named as its labels."""

from django.db import migrations
from django.utils.text import slugify

FASHION16 = [
    "Tshirts",
    "Shirts",
    "Casual Shoes",
    "Tops",
    "Kurtas",
    "Sports Shoes",
    "Watches",
    "Handbags",
    "Heels",
    "Sunglasses",
    "Sweaters",
    "Sandals",
    "Wallets",
    "Flip Flops",
    "Sweatshirts",
    "Belts",
]


def create_categories(apps, schema_editor):
    Category = apps.get_model("catalog", "Category")
    for name in FASHION16:
        # Idempotent: a shop that already has a category of that name keeps it.
        Category.objects.get_or_create(name=name, defaults={"slug": slugify(name)})


def delete_categories(apps, schema_editor):
    Category = apps.get_model("catalog", "Category")
    Category.objects.filter(name__in=FASHION16, products__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(create_categories, delete_categories)]
