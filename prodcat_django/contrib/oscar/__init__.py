"""prodcat for django-oscar shops: add ``"prodcat_django.contrib.oscar"`` to ``INSTALLED_APPS``.

What the app brings (``docs/oscar.md`` shows the few lines of set-up):

- :class:`~prodcat_django.contrib.oscar.adapters.OscarProductAdapter`, registered for
  ``catalogue.Product`` when the app is ready: the title, the primary ``ProductImage``, the
  many-to-many categories (a placeholder such as "Uncategorised" is dropped when a category is
  accepted), child products (variants) skipped, Oscar's full category paths;
- re-suggestion when a product image is added, replaced or deleted;
- the "Suggest categories" action and column on Oscar's ``ProductAdmin`` in Django's admin;
- a review page in Oscar's dashboard (:mod:`~prodcat_django.contrib.oscar.views`), its menu
  entry (:func:`~prodcat_django.contrib.oscar.navigation.with_suggestions_menu`, with a
  permission-based ``access_fn``), and the current suggestion on the dashboard's product form.
"""
