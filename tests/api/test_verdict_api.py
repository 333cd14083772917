"""The out-of-taxonomy verdict and label sources in the API and its OpenAPI schema."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from tests.api.conftest import client_for
from tests.shop_data import png_bytes

pytestmark = pytest.mark.django_db


def test_a_stored_suggestion_carries_its_verdict_and_label_sources(ready_suggestion, reviewer):
    url = reverse("prodcat_api:suggestion-detail", kwargs={"pk": ready_suggestion.pk})
    body = client_for(reviewer).get(url).json()
    assert body["out_of_taxonomy"] is False  # the tiny model has no detector
    assert body["ood_score"] is None and body["ood_threshold"] is None
    assert body["ood_reason"] == ""
    assert [label["source"] for label in body["labels"]] == ["model"] * len(body["labels"])

    ready_suggestion.out_of_taxonomy = True
    ready_suggestion.ood_score, ready_suggestion.ood_threshold = 0.97, 0.91
    ready_suggestion.ood_reason = "title and photo disagree"
    ready_suggestion.labels = [{"label": "Bags", "score": 0.5}]  # stored before sources
    ready_suggestion.save()
    body = client_for(reviewer).get(url).json()
    assert body["out_of_taxonomy"] is True
    assert (body["ood_score"], body["ood_threshold"]) == (0.97, 0.91)
    assert body["ood_reason"] == "title and photo disagree"
    assert body["labels"] == [{"label": "Bags", "score": 0.5, "source": "model"}]


def test_suggest_returns_the_models_verdict(checkpoint, categories, viewer) -> None:
    response = client_for(viewer).post(
        reverse("prodcat_api:suggest"),
        {"title": "Canvas tote bag", "image": _upload()},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["out_of_taxonomy"] is False
    assert "ood_score" in body and "ood_threshold" in body and body["ood_reason"] == ""


def _upload() -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("photo.png", png_bytes(), content_type="image/png")


def test_the_schema_documents_the_verdict() -> None:
    schema = SchemaGenerator(urlconf="tests.testapp.urls").get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    for name in ("Suggestion", "SuggestResponse"):
        properties = components[name]["properties"]
        assert properties["out_of_taxonomy"]["type"] == "boolean"
        assert "never auto-accepted" in properties["out_of_taxonomy"]["description"]
        assert properties["ood_score"]["nullable"] is True
        assert "threshold" in properties["ood_threshold"]["description"]
    source = components["StoredLabel"]["properties"]["source"]
    if "$ref" in source:  # drf-spectacular names the choices as a component of their own
        source = components[source["$ref"].rsplit("/", 1)[-1]]
    elif "allOf" in source:
        source = components[source["allOf"][0]["$ref"].rsplit("/", 1)[-1]]
    assert set(source["enum"]) == {"model", "neighbours", "name"}
