"""URLs of the example shop: the admin, prodcat's API and its OpenAPI schema, readable in the
browser with Swagger UI (``/api/docs/``) or Redoc (``/api/redoc/``). Both are served from
drf-spectacular-sidecar's static files, so no page loads anything from a CDN.
"""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/prodcat/", include("prodcat_django.api.urls")),
]

if settings.DEBUG:
    # Development only: serve uploaded product photos. Use the web server or object storage
    # in production.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
