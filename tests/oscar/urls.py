"""URLs of the Oscar test project: Django's admin, prodcat's dashboard pages, and the shop."""

from django.apps import apps
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/category-suggestions/", apps.get_app_config("prodcat_oscar").urls),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
