"""The model-versions admin page: metrics side by side, gate, activate/rollback by permission."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prodcat_django.models import ModelVersion, ModelVersionStatus
from prodcat_django.training import store
from tests.shop_data import make_user
from tests.training.test_store import shop_version

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_checkpoint")]


def test_versions_page_and_activation_need_the_permission(client, tmp_path, categories, manager):
    row = shop_version(tmp_path, categories)
    viewer = make_user("viewer", "view_modelversion", is_staff=True)
    client.force_login(viewer)
    listing = client.get(reverse("admin:prodcat_django_modelversion_changelist"))
    assert listing.status_code == 200
    assert "tiny 0.0.1" in listing.content.decode()  # the built-in version has a row
    detail = client.get(reverse("admin:prodcat_django_modelversion_change", args=[row.pk]))
    assert detail.status_code == 200
    assert "Activate this version" not in detail.content.decode()
    activate = reverse("admin:prodcat_django_modelversion_activate", args=[row.pk])
    assert client.post(activate).status_code == 403
    assert store.active_version().builtin

    client.force_login(manager)
    page = client.get(reverse("admin:prodcat_django_modelversion_change", args=[row.pk]))
    assert "Activate this version" in page.content.decode()
    assert client.get(activate).status_code == 405  # POST only
    assert client.post(activate).status_code == 302
    assert store.active_version().pk == row.pk
    page = client.get(reverse("admin:prodcat_django_modelversion_change", args=[row.pk]))
    assert "Roll back to the previous version" in page.content.decode()
    client.post(reverse("admin:prodcat_django_modelversion_rollback"))
    assert ModelVersion.objects.get(pk=row.pk).status == ModelVersionStatus.RETIRED
    assert store.active_version().builtin
