from django.apps import AppConfig


class TestappConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # VendorItem stands for a third-party model the shop cannot edit: it is registered
        # from here rather than from its models.py.
        import prodcat_django
        from prodcat_django.registry import is_registered

        from .models import Category, VendorItem

        if is_registered(VendorItem):  # ready() can run twice (tests that rebuild app registries)
            return
        prodcat_django.register(
            VendorItem,
            title_field="name",
            image_field="picture",
            category_field="kind",
            category_model=Category,
            suggestion_attr="prodcat_suggestion",
        )
