"""URLs of prodcat's API. Mount them with
``path("api/prodcat/", include("prodcat_django.api.urls"))``."""

from __future__ import annotations

from django.urls import path

from prodcat_django.api import views

app_name = "prodcat_api"

urlpatterns = [
    path("suggest/", views.SuggestView.as_view(), name="suggest"),
    # <str:pk>: integer, UUID and text primary keys all work; the view converts it.
    path(
        "products/<str:pk>/suggestions/",
        views.ProductSuggestionsView.as_view(),
        name="product-suggestions",
    ),
    path("suggestions/<int:pk>/", views.SuggestionDetailView.as_view(), name="suggestion-detail"),
    path(
        "suggestions/<int:pk>/accept/",
        views.AcceptSuggestionView.as_view(),
        name="suggestion-accept",
    ),
    path(
        "suggestions/<int:pk>/retry/",
        views.RetrySuggestionView.as_view(),
        name="suggestion-retry",
    ),
    path(
        "suggestions/<int:pk>/reject/",
        views.RejectSuggestionView.as_view(),
        name="suggestion-reject",
    ),
]
