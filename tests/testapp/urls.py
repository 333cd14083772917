"""The test project's URLs: the admin, and prodcat's API under /api/prodcat/ once it exists."""

from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls)]

if find_spec("prodcat_django.api.urls") is not None:
    urlpatterns.append(path("api/prodcat/", include("prodcat_django.api.urls")))
