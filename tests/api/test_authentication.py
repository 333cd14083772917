"""The API's own authentication classes: Basic, session (with CSRF), Token when installed."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.urls import reverse
from rest_framework.authentication import (
    BasicAuthentication,
    SessionAuthentication,
    TokenAuthentication,
)
from rest_framework.test import APIClient

from prodcat_django.api.authentication import (
    ThrottledBasicAuthentication,
    ThrottledTokenAuthentication,
    api_authentication_classes,
)

pytestmark = pytest.mark.django_db


def detail(ready_suggestion) -> str:
    return reverse("prodcat_api:suggestion-detail", kwargs={"pk": ready_suggestion.pk})


def test_wrong_basic_password_is_401(ready_suggestion, viewer) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic dmlld2VyOndyb25n")  # viewer:wrong
    assert client.get(detail(ready_suggestion)).status_code == 401


def test_session_login_works_and_unsafe_requests_need_the_csrf_token(
    ready_suggestion, reviewer
) -> None:
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="reviewer", password="pw")
    assert client.get(detail(ready_suggestion)).status_code == 200

    accept = reverse("prodcat_api:suggestion-accept", kwargs={"pk": ready_suggestion.pk})
    refused = client.post(accept)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    client.get(reverse("admin:login"))  # sets the csrftoken cookie, as any page would
    token = client.cookies["csrftoken"].value
    assert client.post(accept, HTTP_X_CSRFTOKEN=token).status_code == 200


def test_token_authentication_joins_when_authtoken_is_installed(monkeypatch) -> None:
    assert api_authentication_classes() == [ThrottledBasicAuthentication, SessionAuthentication]
    assert issubclass(ThrottledBasicAuthentication, BasicAuthentication)
    # Installing authtoken for real would reload the app registry (and its admin) mid-test.
    real = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name == "rest_framework.authtoken" or real(name)
    )
    assert api_authentication_classes() == [
        ThrottledTokenAuthentication,
        ThrottledBasicAuthentication,
        SessionAuthentication,
    ]
    assert issubclass(ThrottledTokenAuthentication, TokenAuthentication)


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_failed_basic_attempts_are_throttled_by_address_before_authentication(
    ready_suggestion, reviewer, settings
) -> None:
    settings.PRODCAT = {**settings.PRODCAT, "AUTH_FAILURE_RATE": "3/min"}
    url = detail(ready_suggestion)
    guesser = APIClient(REMOTE_ADDR="203.0.113.7")
    codes = []
    for i in range(5):
        guesser.credentials(HTTP_AUTHORIZATION=_basic("reviewer", f"guess{i}"))
        codes.append(guesser.get(url).status_code)
    assert codes == [401, 401, 401, 429, 429]
    # Now even the right password is refused from that address, before it is checked...
    guesser.credentials(HTTP_AUTHORIZATION=_basic("reviewer", "pw"))
    blocked = guesser.get(url)
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) <= 60
    # ...while another address signs in as usual.
    other = APIClient(REMOTE_ADDR="198.51.100.2")
    other.credentials(HTTP_AUTHORIZATION=_basic("reviewer", "pw"))
    assert other.get(url).status_code == 200


def test_successful_basic_sign_ins_are_not_counted(ready_suggestion, reviewer, settings) -> None:
    settings.PRODCAT = {**settings.PRODCAT, "AUTH_FAILURE_RATE": "2/min"}
    client = APIClient(REMOTE_ADDR="203.0.113.8")
    client.credentials(HTTP_AUTHORIZATION=_basic("reviewer", "pw"))
    assert {client.get(detail(ready_suggestion)).status_code for _ in range(5)} == {200}
