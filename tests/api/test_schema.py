"""The OpenAPI schema of the API: generated without warnings and valid (the equivalent of
``manage.py spectacular --validate --fail-on-warn``), and accurate where it matters."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    GENERATOR_STATS.reset()
    generated = SchemaGenerator(urlconf="tests.testapp.urls").get_schema(request=None, public=True)
    warnings = dict(GENERATOR_STATS._warn_cache)
    errors = dict(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert not warnings, warnings
    assert not errors, errors
    return generated


def test_schema_is_valid_openapi(schema: dict[str, Any]) -> None:
    validate_schema(schema)  # raises on an invalid document


def test_suggest_takes_multipart_with_a_binary_image(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/prodcat/suggest/"]["post"]
    content = operation["requestBody"]["content"]
    assert list(content) == ["multipart/form-data"]
    ref = content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = schema["components"]["schemas"][ref]["properties"]
    assert properties["image"]["format"] == "binary"
    assert properties["top_k"]["minimum"] == 1
    assert {"200", "400", "401", "403", "413", "429"} <= set(operation["responses"])


def test_queueing_documents_202_and_the_model_parameter(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/prodcat/products/{id}/suggestions/"]["post"]
    assert "202" in operation["responses"] and "200" not in operation["responses"]
    assert "requestBody" not in operation
    assert "model" in [p["name"] for p in operation["parameters"] if p["in"] == "query"]


def test_review_endpoints_and_authentication(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    assert "409" in paths["/api/prodcat/suggestions/{id}/accept/"]["post"]["responses"]
    reject = paths["/api/prodcat/suggestions/{id}/reject/"]["post"]
    assert "application/json" in reject["requestBody"]["content"]
    assert set(schema["components"]["securitySchemes"]) >= {"basicAuth", "cookieAuth"}
    suggestion = schema["components"]["schemas"]["Suggestion"]["properties"]
    assert suggestion["category"]["nullable"] is True or "oneOf" in suggestion["category"]


def test_a_products_suggestions_are_a_paginated_list(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/prodcat/products/{id}/suggestions/"]["get"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/PaginatedSuggestionList")
    assert {"limit", "offset", "model"} <= {p["name"] for p in operation["parameters"]}
