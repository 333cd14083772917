"""URLs of the example shop: the admin, prodcat's API and its OpenAPI schema.

No Swagger/Redoc page: without drf-spectacular-sidecar they load their JavaScript from a CDN,
which an offline install cannot reach. Open ``/api/schema/`` in any OpenAPI viewer instead.
"""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/prodcat/", include("prodcat_django.api.urls")),
]

if settings.DEBUG:
    # Development only: serve uploaded product photos. Use the web server or object storage
    # in production.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
