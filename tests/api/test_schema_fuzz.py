"""API fuzzing from the OpenAPI schema: Schemathesis generates requests for every operation
(valid and invalid bodies, paths and query strings, from the schema drf-spectacular makes) and
sends them through the real Django/DRF stack (WSGI, no network); none may answer 5xx.

Bounded: ``MAX_EXAMPLES`` requests per operation (about a minute in all on a CI machine),
derandomized so a failure reproduces. Requests are signed in as a superuser (every permission,
so the generated input reaches the views), the rate limits are off (a 429 would end the input's
path early), and a few products and suggestions exist so generated ids sometimes hit rows.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from prodcat_django.models import CategorySuggestion, SuggestionStatus

MAX_EXAMPLES = 25

_document = SchemaGenerator(urlconf="tests.testapp.urls").get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(_document)
schema.app = WSGIHandler()

AUTH = {"Authorization": "Basic " + base64.b64encode(b"boss:pw").decode()}

#: Requests sent and status codes seen, over all operations (printed at the end of the module).
SEEN: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_seen() -> Any:
    yield
    total = sum(SEEN.values())
    by_code: dict[str, int] = {}
    for key, n in SEEN.items():
        code = key.rsplit(" ", 1)[-1]
        by_code[code] = by_code.get(code, 0) + n
    print(
        f"\nschemathesis: {total} generated requests, status codes {dict(sorted(by_code.items()))}"
    )


@pytest.fixture
def shop(
    db: None, settings: Any, model_checkpoint: Any, make_product: Any, categories: Any
) -> None:
    from django.contrib.auth.models import User

    settings.PRODCAT = {**settings.PRODCAT, "API_THROTTLE_RATE": None, "AUTH_FAILURE_RATE": None}
    User.objects.create_superuser("boss", "boss@example.com", "pw")
    for i, status in enumerate((SuggestionStatus.READY, SuggestionStatus.FAILED, "pending")):
        product = make_product(title=f"Leather boots {i}")
        CategorySuggestion.objects.current_for(product).update(
            status=status, label="Shoes", category_pk=str(categories["Shoes"].pk)
        )


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_generated_request_gets_a_server_error(case: Any, shop: None) -> None:
    response = case.call(headers=AUTH)
    key = f"{case.method} {case.path} -> {response.status_code}"
    SEEN[key] = SEEN.get(key, 0) + 1
    case.validate_response(response, checks=[not_a_server_error])
