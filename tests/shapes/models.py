"""One small product model per shop shape prodcat's adapters support, each registered the way
a shop would: name + description, an image at a URL, a CharField of category names, an mptt
tree, a treebeard tree, and many-to-many categories with the image in a related model."""

from django.db import models
from mptt.models import MPTTModel, TreeForeignKey
from treebeard.mp_tree import MP_Node

import prodcat_django
from prodcat_django.adapters import FieldAdapter, ImageSource, RelatedInput


class Category(models.Model):
    """Flat categories; names are not unique (the M2M shape has an "Uncategorised" one)."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.name


# --- name + description -------------------------------------------------------------------


class Article(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.name


prodcat_django.register(Article, title_field=("name", "description"), category_field="category")


# --- an image at a URL (a CDN), with the ETag the shop stored --------------------------------


class CdnItem(models.Model):
    title = models.CharField(max_length=200)
    image_url = models.URLField(blank=True)
    image_etag = models.CharField(max_length=100, blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.title


class CdnItemAdapter(FieldAdapter):
    title_fields = ("title",)
    category_field = "category"
    image_field = "image_url"
    input_fields = frozenset({"title", "image_url", "image_etag"})

    def get_image(self, product: CdnItem) -> ImageSource | None:
        return ImageSource.from_url(product.image_url, etag=product.image_etag)


prodcat_django.register(CdnItem, adapter=CdnItemAdapter)


# --- a CharField of category names ---------------------------------------------------------


class LabelledItem(models.Model):
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.title


prodcat_django.register(LabelledItem, title_field="title", category_field="category")


# --- trees -------------------------------------------------------------------------------


class MpttCategory(MPTTModel):
    name = models.CharField(max_length=100)
    parent = TreeForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )

    def __str__(self) -> str:
        return self.name


class MpttItem(models.Model):
    title = models.CharField(max_length=200)
    category = models.ForeignKey(MpttCategory, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.title


prodcat_django.register(MpttItem, title_field="title", category_field="category")


class BeardCategory(MP_Node):
    name = models.CharField(max_length=100)
    node_order_by = ["name"]

    def __str__(self) -> str:
        return self.name


class BeardItem(models.Model):
    title = models.CharField(max_length=200)
    category = models.ForeignKey(BeardCategory, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.title


prodcat_django.register(BeardItem, title_field="title", category_field="category")


# --- many-to-many categories, images in a related model -------------------------------------


class TaggedItem(models.Model):
    title = models.CharField(max_length=200)
    categories = models.ManyToManyField(Category, blank=True, related_name="tagged_items")

    def __str__(self) -> str:
        return self.title


class TaggedItemImage(models.Model):
    item = models.ForeignKey(TaggedItem, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(upload_to="tagged/")
    display_order = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.image.name


class TaggedItemAdapter(FieldAdapter):
    title_fields = ("title",)
    category_field = "categories"
    placeholder_categories = ("Uncategorised",)
    related_inputs = [RelatedInput(TaggedItemImage, product=lambda image: image.item)]

    def get_image(self, product: TaggedItem) -> ImageSource | None:
        # The primary image: the first by display order.
        first = product.images.order_by("display_order", "pk").first()
        return ImageSource.from_field(first.image) if first is not None else None


prodcat_django.register(TaggedItem, adapter=TaggedItemAdapter)
