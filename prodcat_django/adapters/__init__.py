"""Product adapters: how prodcat reads a shop's products and writes their categories.

- :class:`ProductAdapter`: subclass it for any product shape, and register it with
  ``prodcat_django.register(Product, adapter=MyAdapter)``;
- :class:`FieldAdapter`: the built-in one that ``register(Product, title_field=...,
  category_field=..., image_field=...)`` builds;
- :class:`ImageSource`: what ``get_image`` returns (a file field, a URL, bytes);
- :class:`RelatedInput`: a related model whose saves and deletes change the inputs.

``docs/adapters.md`` shows each shape. Importing this package loads no models and no torch.
"""

from prodcat_django.adapters.base import ProductAdapter, RelatedInput
from prodcat_django.adapters.fields import FieldAdapter
from prodcat_django.adapters.images import ImageSource

__all__ = ["FieldAdapter", "ImageSource", "ProductAdapter", "RelatedInput"]
