"""URLs of the admin and browser tests (see tests/admin/site.py)."""

from django.conf import settings
from django.urls import include, path, re_path
from django.views.static import serve

from tests.admin.site import class_site, legacy_site, prefetch_site, site


def media(request, path):
    # MEDIA_ROOT is a per-test folder: read it per request (django.conf.urls.static
    # would freeze it at import and only works with DEBUG on).
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [
    path("admin/", site.urls),
    path("legacy/", legacy_site.urls),
    path("api/prodcat/", include("prodcat_django.api.urls")),
    path("prefetch/", prefetch_site.urls),
    path("classy/", class_site.urls),
    re_path(r"^media/(?P<path>.+)$", media),
]
