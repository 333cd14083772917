"""The ``prodcat`` throttle scope takes its rate from PRODCAT["API_THROTTLE_RATE"]."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.api.conftest import client_for
from tests.shop_data import make_user

pytestmark = pytest.mark.django_db

URL = reverse("prodcat_api:suggest")


def post(client) -> int:
    return client.post(URL, {"title": "Running shoes"}, format="multipart").status_code


def test_requests_over_the_rate_get_429_with_retry_after(prodcat_setting: Callable, viewer):
    prodcat_setting(API_THROTTLE_RATE="2/min")
    client = client_for(viewer)
    assert [post(client), post(client)] == [200, 200]
    response = client.post(URL, {"title": "Running shoes"}, format="multipart")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60


def test_the_count_is_per_user(prodcat_setting: Callable, viewer):
    prodcat_setting(API_THROTTLE_RATE="1/min")
    other = make_user("other", "view_categorysuggestion")
    assert post(client_for(viewer)) == 200
    assert post(client_for(viewer)) == 429
    assert post(client_for(other)) == 200


def test_none_turns_the_limit_off(prodcat_setting: Callable, viewer):
    prodcat_setting(API_THROTTLE_RATE=None)
    client = client_for(viewer)
    assert {post(client) for _ in range(5)} == {200}


def test_needs_no_default_throttle_rates_entry(prodcat_setting: Callable, viewer):
    # A shop whose REST_FRAMEWORK settings know nothing about the "prodcat" scope.
    prodcat_setting(API_THROTTLE_RATE="1/min")
    with override_settings(REST_FRAMEWORK={"DEFAULT_THROTTLE_RATES": {}}):
        client = client_for(viewer)
        assert [post(client), post(client)] == [200, 429]


def test_every_view_names_its_own_classes():
    # The project's DRF defaults never apply: each view sets them explicitly.
    from prodcat_django.api import views
    from prodcat_django.api.throttling import ProdcatRateThrottle

    api_views = [
        views.SuggestView,
        views.ProductSuggestionsView,
        views.SuggestionDetailView,
        views.AcceptSuggestionView,
        views.RejectSuggestionView,
    ]
    for view in api_views:
        assert "permission_classes" in vars(view), view
        assert view.throttle_classes == [ProdcatRateThrottle], view
        assert view.throttle_scope == "prodcat", view
        assert view.get_authenticators is views.ProdcatAPIView.get_authenticators, view
