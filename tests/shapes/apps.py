from django.apps import AppConfig


class ShapesConfig(AppConfig):
    """Small product models, one per plain-shop shape the adapters support (tests only)."""

    name = "tests.shapes"
    label = "shapes"
    default_auto_field = "django.db.models.AutoField"
