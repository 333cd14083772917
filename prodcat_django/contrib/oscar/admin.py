"""Adds the "Suggest categories" action and the suggestion column to Oscar's ``ProductAdmin``
on Django's admin site (it is Oscar's class, registered by Oscar's catalogue ``admin.py``).

Imported by the admin's autodiscovery. The catalogue app's ``admin.py`` (Oscar's or a fork's) is
imported first, so this works wherever the add-on is listed in ``INSTALLED_APPS``.
"""

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.contrib import admin
from oscar.core.loading import get_model

from prodcat_django.admin import enable_suggestions

_catalogue_admin = apps.get_app_config("catalogue").name + ".admin"
if find_spec(_catalogue_admin) is not None:
    import_module(_catalogue_admin)

_product = get_model("catalogue", "Product")
apps.get_app_config("prodcat_oscar").register_product()  # the admin may run before ready()
if admin.site.is_registered(_product):
    enable_suggestions(admin.site, _product)
