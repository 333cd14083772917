"""URLs of the admin tests (see tests/admin/site.py)."""

from django.urls import path

from tests.admin.site import legacy_site, site

urlpatterns = [
    path("admin/", site.urls),
    path("legacy/", legacy_site.urls),
]
