"""Oscar's own ``ProductAdmin`` (its queryset uses ``prefetch_related``) in Django's admin gets
the "Suggest categories" action; the action skips variants."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse
from oscar.apps.catalogue.admin import ProductAdmin
from oscar.core.loading import get_model

from prodcat_django.admin import SuggestCategoriesAdminMixin
from prodcat_django.models import CategorySuggestion, SuggestionBatch
from tests.oscar.conftest import make_staff

Product = get_model("catalogue", "Product")

pytestmark = pytest.mark.django_db


def test_oscars_product_admin_has_the_action():
    model_admin = admin.site.get_model_admin(Product)
    assert isinstance(model_admin, ProductAdmin)
    assert isinstance(model_admin, SuggestCategoriesAdminMixin)


def test_the_bulk_action_on_oscars_product_admin(
    client, make_oscar_product, settings, django_capture_on_commit_callbacks
):
    settings.PRODCAT = {**settings.PRODCAT, "AUTO_SUGGEST": False}
    boots = make_oscar_product("Leather ankle boots")
    parent = make_oscar_product("Oxford shirt", structure=Product.PARENT)
    child = make_oscar_product("", structure=Product.CHILD, parent=parent)
    user = make_staff(
        "manager", "catalogue.view_product", "catalogue.change_product", is_superuser=False
    )
    client.force_login(user)
    changelist = reverse("admin:catalogue_product_changelist")
    page = client.get(changelist)
    assert page.status_code == 200
    assert "suggest_categories" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            changelist,
            {
                "action": "suggest_categories",
                "_selected_action": [boots.pk, parent.pk, child.pk],
            },
        )
    assert response.status_code == 302
    batch = SuggestionBatch.objects.get()
    queued = set(CategorySuggestion.objects.filter(batch=batch).values_list("object_id", flat=True))
    assert queued == {str(boots.pk), str(parent.pk)}  # the variant is skipped
    assert batch.total == 2
    assert callbacks, "the chunk's task is sent after the commit"
