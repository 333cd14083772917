"""Queueing, reading and reviewing suggestions through the API (tiny model, eager Celery)."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from prodcat_django.models import (
    CategorySuggestion,
    DecisionAction,
    SuggestionDecision,
    SuggestionStatus,
)
from tests.api.conftest import client_for
from tests.shop_data import make_user, png_bytes
from tests.testapp.models import Product, VendorItem

pytestmark = pytest.mark.django_db


def queue_url(pk: object, model: str | None = "testapp.Product") -> str:
    url = reverse("prodcat_api:product-suggestions", kwargs={"pk": pk})
    return f"{url}?model={model}" if model else url


def detail_url(pk: int, action: str = "") -> str:
    name = f"prodcat_api:suggestion-{action or 'detail'}"
    return reverse(name, kwargs={"pk": pk})


# --------------------------------------------------------------------------- queue


def test_queue_needs_authentication_and_change_permission(
    checkpoint, make_product, viewer, review_only
) -> None:
    product = make_product()
    assert client_for(None).post(queue_url(product.pk)).status_code == 401
    for user in (viewer, review_only):  # may see or review suggestions, not change products
        response = client_for(user).post(queue_url(product.pk))
        assert response.status_code == 403
        assert "testapp.change_product" in response.json()["detail"]


def test_queue_returns_202_with_the_pending_suggestion_and_its_url(
    checkpoint, make_product, editor
) -> None:
    product = make_product("Suede loafers")
    before = CategorySuggestion.objects.current_for(product).get()

    response = client_for(editor).post(queue_url(product.pk))

    assert response.status_code == 202, response.content
    body = response.json()
    suggestion = CategorySuggestion.objects.current_for(product).get()
    assert suggestion.pk != before.pk  # forced: a new one even though nothing changed
    assert body["id"] == suggestion.pk
    assert body["status"] == "pending"
    assert body["product"] == {"type": "testapp.Product", "pk": str(product.pk)}
    assert body["url"].endswith(detail_url(suggestion.pk))
    assert response["Location"] == body["url"]
    before.refresh_from_db()
    assert before.status == SuggestionStatus.OBSOLETE


def test_queued_suggestion_is_run_after_commit(
    checkpoint, categories, make_product, editor, django_capture_on_commit_callbacks, commit_so_far
) -> None:
    product = make_product("Suede loafers", png_bytes("maroon"))
    commit_so_far()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(editor).post(queue_url(product.pk))
    assert response.status_code == 202
    # Eager Celery in the unit-test settings: the task ran when the transaction committed.
    detail = client_for(editor).get(response["Location"]).json()
    assert detail["status"] == "ready"
    assert len(detail["labels"]) == 3
    assert detail["label"] == detail["labels"][0]["label"]
    assert detail["category"] == {
        "pk": str(categories[detail["label"]].pk),
        "name": detail["label"],
    }
    assert detail["model"]["name"] and detail["model"]["version"]


def test_several_registered_models_need_the_model_parameter(
    checkpoint, make_product, editor
) -> None:
    product = make_product()
    response = client_for(editor).post(queue_url(product.pk, model=None))
    assert response.status_code == 400
    message = response.json()["model"][0]
    assert "testapp.Product" in message and "testapp.VendorItem" in message

    unknown = client_for(editor).post(queue_url(product.pk, model="auth.User"))
    assert unknown.status_code == 400
    assert "not a product model registered" in unknown.json()["model"][0]


def test_uuid_primary_keys_of_another_registered_model(checkpoint, editor) -> None:
    item = VendorItem.objects.create(name="Brass table lamp")
    response = client_for(editor).post(queue_url(item.pk, model="testapp.vendoritem"))
    assert response.status_code == 202, response.content
    assert response.json()["product"] == {"type": "testapp.VendorItem", "pk": str(item.pk)}


@pytest.mark.parametrize(
    ("pk", "model"),
    [(999_999, "testapp.Product"), ("not-a-number", "testapp.Product"), (uuid.uuid4(), None)],
)
def test_unknown_or_malformed_product_id_is_404(checkpoint, editor, pk, model) -> None:
    response = client_for(editor).post(queue_url(pk, model=model or "testapp.VendorItem"))
    assert response.status_code == 404


# --------------------------------------------------------------------------- read


def test_get_needs_view_permission(ready_suggestion, nobody) -> None:
    assert client_for(None).get(detail_url(ready_suggestion.pk)).status_code == 401
    assert client_for(nobody).get(detail_url(ready_suggestion.pk)).status_code == 403


def test_get_unknown_suggestion_is_404(checkpoint, viewer) -> None:
    assert client_for(viewer).get(detail_url(987_654)).status_code == 404


def test_get_shows_the_stored_suggestion(ready_suggestion, editor) -> None:
    body = client_for(editor).get(detail_url(ready_suggestion.pk)).json()
    assert body["id"] == ready_suggestion.pk
    assert body["status"] == "ready"
    assert body["labels"] == ready_suggestion.labels
    assert body["score"] == pytest.approx(ready_suggestion.score)
    assert body["model"] == {
        "name": ready_suggestion.model_name,
        "version": ready_suggestion.model_version,
    }
    assert body["reviewed_by"] is None and body["reviewed_at"] is None
    assert body["error"] == "" and body["correction"] is None
    assert set(body) >= {"created_at", "updated_at", "fingerprint", "is_current"}
    explanation = body["explanation"]  # stored by the worker with the labels
    assert [word for word, _ in explanation["tokens"]] == ["Canvas", "tote", "bag"]
    assert sum(map(sum, explanation["regions"])) == pytest.approx(1.0, abs=1e-4)
    assert set(explanation["modality_weight"]) == {"text", "image"}


# --------------------------------------------------------------------------- accept


def test_accept_needs_the_review_permission(ready_suggestion, editor) -> None:
    response = client_for(editor).post(detail_url(ready_suggestion.pk, "accept"))
    assert response.status_code == 403
    assert "prodcat_django.review_categorysuggestion" in response.json()["detail"]
    ready_suggestion.refresh_from_db()
    assert ready_suggestion.status == SuggestionStatus.READY


def test_accept_sets_the_products_category_and_records_who(ready_suggestion, reviewer) -> None:
    response = client_for(reviewer).post(detail_url(ready_suggestion.pk, "accept"))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "accepted"
    assert body["reviewed_by"] == "reviewer" and body["reviewed_at"]
    product = ready_suggestion.product
    product.refresh_from_db()
    assert product.category is not None
    assert product.category.name == ready_suggestion.label
    decision = SuggestionDecision.objects.get(suggestion=ready_suggestion)
    assert (decision.action, decision.username) == (DecisionAction.ACCEPTED, "reviewer")


def test_accept_a_pending_suggestion_is_409(checkpoint, make_product, reviewer) -> None:
    suggestion = CategorySuggestion.objects.current_for(make_product()).get()
    response = client_for(reviewer).post(detail_url(suggestion.pk, "accept"))
    assert response.status_code == 409
    assert response.json()["code"] == "not_ready"


def test_accept_without_a_matching_category_is_409(ready_suggestion, reviewer) -> None:
    CategorySuggestion.objects.filter(pk=ready_suggestion.pk).update(category_pk="")
    response = client_for(reviewer).post(detail_url(ready_suggestion.pk, "accept"))
    assert response.status_code == 409
    assert response.json()["code"] == "no_category"


def test_superseded_suggestion_cannot_be_accepted(ready_suggestion, reviewer, editor) -> None:
    product = Product.objects.get(pk=ready_suggestion.object_id)
    assert client_for(editor).post(queue_url(product.pk)).status_code == 202
    response = client_for(reviewer).post(detail_url(ready_suggestion.pk, "accept"))
    assert response.status_code == 409
    assert response.json()["code"] == "not_current"


# --------------------------------------------------------------------------- reject


def test_reject_needs_the_review_permission(ready_suggestion, viewer) -> None:
    assert client_for(viewer).post(detail_url(ready_suggestion.pk, "reject")).status_code == 403
    assert client_for(None).post(detail_url(ready_suggestion.pk, "reject")).status_code == 401


def test_plain_reject_keeps_the_category_and_records_the_note(ready_suggestion, reviewer) -> None:
    response = client_for(reviewer).post(
        detail_url(ready_suggestion.pk, "reject"), {"note": "blurry photo"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["note"], body["correction"]) == ("rejected", "blurry photo", None)
    product = Product.objects.get(pk=ready_suggestion.object_id)
    assert product.category is None
    decision = SuggestionDecision.objects.get(suggestion=ready_suggestion)
    assert (decision.action, decision.note) == (DecisionAction.REJECTED, "blurry photo")


@pytest.mark.parametrize("how", ["pk", "name", "slug"])
def test_reject_with_a_correction_files_the_product(
    ready_suggestion, reviewer, categories, how: str
) -> None:
    target = next(c for label, c in categories.items() if label != ready_suggestion.label)
    value = {"pk": target.pk, "name": target.name.upper(), "slug": target.slug}[how]

    response = client_for(reviewer).post(
        detail_url(ready_suggestion.pk, "reject"), {"category": value}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["correction"] == {"pk": str(target.pk), "name": target.name}
    product = Product.objects.get(pk=ready_suggestion.object_id)
    assert product.category == target


def test_reject_with_an_unknown_category_is_a_field_error(ready_suggestion, reviewer) -> None:
    response = client_for(reviewer).post(
        detail_url(ready_suggestion.pk, "reject"), {"category": "Spaceships"}, format="json"
    )
    assert response.status_code == 400
    assert "Spaceships" in response.json()["category"][0]
    ready_suggestion.refresh_from_db()
    assert ready_suggestion.status == SuggestionStatus.READY  # nothing was recorded


def test_a_superuser_passes_every_permission(ready_suggestion) -> None:
    admin = make_user("boss")
    admin.is_superuser = True
    admin.save()
    response = client_for(admin).post(detail_url(ready_suggestion.pk, "accept"))
    assert response.status_code == 200, response.content


# --------------------------------------------------------------------------- list


def test_listing_needs_view_permissions_on_suggestions_and_product(
    ready_suggestion, viewer, editor
) -> None:
    url = queue_url(ready_suggestion.object_id)
    assert client_for(None).get(url).status_code == 401
    refused = client_for(viewer).get(url)  # may see suggestions, not products
    assert refused.status_code == 403
    assert "testapp.view_product" in refused.json()["detail"]
    assert client_for(editor).get(url).status_code == 200


def test_one_suggestion_needs_view_permission_on_its_product_too(
    ready_suggestion, viewer, editor
) -> None:
    url = reverse("prodcat_api:suggestion-detail", kwargs={"pk": ready_suggestion.pk})
    refused = client_for(viewer).get(url)  # may see suggestions, not products
    assert refused.status_code == 403
    assert "testapp.view_product" in refused.json()["detail"]
    assert client_for(editor).get(url).status_code == 200


def test_listing_puts_the_current_suggestion_first_and_paginates(ready_suggestion, editor) -> None:
    client = client_for(editor)
    url = queue_url(ready_suggestion.object_id)
    queued = [client.post(url).json()["id"] for _ in range(3)]

    body = client.get(url).json()
    assert body["count"] == 4
    assert [s["id"] for s in body["results"]] == [
        queued[2],
        queued[1],
        queued[0],
        ready_suggestion.pk,
    ]
    assert [s["is_current"] for s in body["results"]] == [True, False, False, False]

    page = client.get(f"{url}&limit=2&offset=2").json()
    assert [s["id"] for s in page["results"]] == [queued[0], ready_suggestion.pk]
    assert page["next"] is None and page["previous"]


def test_listing_an_unknown_product_is_404(checkpoint, editor) -> None:
    assert client_for(editor).get(queue_url(424_242)).status_code == 404


def test_listing_costs_the_same_queries_for_more_suggestions(
    ready_suggestion, editor, categories
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(editor)
    url = queue_url(ready_suggestion.object_id)
    other = next(c for label, c in categories.items() if label != ready_suggestion.label)

    def listing_queries() -> int:
        # Every row names a matched category and a correction, so names are looked up.
        CategorySuggestion.objects.filter(object_id=ready_suggestion.object_id).update(
            category_pk=str(categories[ready_suggestion.label].pk), correction_pk=str(other.pk)
        )
        with CaptureQueriesContext(connection) as queries:
            body = client.get(url).json()
        assert all(s["correction"]["name"] == other.name for s in body["results"])
        return len(queries)

    client.post(url)
    with_two = listing_queries()
    for _ in range(4):
        client.post(url)
    assert listing_queries() == with_two


# ------------------------------------------------------------- decisions, retry, exposure


def _post(user, name: str, pk: int, data=None):
    url = reverse(f"prodcat_api:suggestion-{name}", kwargs={"pk": pk})
    return client_for(user).post(url, data or {}, format="json")


def test_accept_twice_is_200_with_one_decision(ready_suggestion, reviewer) -> None:
    first = _post(reviewer, "accept", ready_suggestion.pk)
    again = _post(reviewer, "accept", ready_suggestion.pk)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["reviewed_at"] == first.json()["reviewed_at"]
    assert SuggestionDecision.objects.count() == 1


def test_a_different_decision_is_409_unless_override(ready_suggestion, reviewer) -> None:
    assert _post(reviewer, "reject", ready_suggestion.pk).status_code == 200
    refused = _post(reviewer, "accept", ready_suggestion.pk)
    assert refused.status_code == 409
    assert refused.json()["code"] == "already_decided"
    allowed = _post(reviewer, "accept", ready_suggestion.pk, {"override": True})
    assert allowed.status_code == 200 and allowed.json()["status"] == "accepted"
    assert _post(reviewer, "reject", ready_suggestion.pk).status_code == 409


def test_accept_after_a_manual_category_change_is_409_unless_confirmed(
    ready_suggestion, reviewer, categories
) -> None:
    other = next(c for c in categories.values() if str(c.pk) != ready_suggestion.category_pk)
    Product.objects.filter(pk=ready_suggestion.object_id).update(category=other)
    refused = _post(reviewer, "accept", ready_suggestion.pk)
    assert refused.status_code == 409 and refused.json()["code"] == "category_changed"
    assert Product.objects.get(pk=ready_suggestion.object_id).category == other
    confirmed = _post(reviewer, "accept", ready_suggestion.pk, {"confirm_category_change": True})
    assert confirmed.status_code == 200


def test_review_permission_without_change_permission_cannot_set_a_category(
    ready_suggestion, review_only, categories
) -> None:
    refused = _post(review_only, "accept", ready_suggestion.pk)
    assert refused.status_code == 403 and "testapp.change_product" in refused.json()["detail"]
    name = next(iter(categories))
    refused = _post(review_only, "reject", ready_suggestion.pk, {"category": name})
    assert refused.status_code == 403
    assert Product.objects.get(pk=ready_suggestion.object_id).category is None
    assert not SuggestionDecision.objects.exists()


def test_retry_a_failed_suggestion(checkpoint, make_product, editor, viewer, media_root) -> None:
    from prodcat_django import services

    product = make_product(title="Boots", image=b"not an image")
    failed = CategorySuggestion.objects.current_for(product).get()
    services.run_suggestions([failed.pk])
    failed.refresh_from_db()
    assert failed.status == "failed"
    assert _post(viewer, "retry", failed.pk).status_code == 403
    response = _post(editor, "retry", failed.pk)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["id"] != failed.pk and body["is_current"]
    assert response["Location"] == body["url"]
    again = _post(editor, "retry", failed.pk)
    assert again.status_code == 409 and again.json()["code"] == "not_current"


def test_errors_shown_by_the_api_carry_no_server_paths(ready_suggestion, editor) -> None:
    CategorySuggestion.objects.filter(pk=ready_suggestion.pk).update(
        status="failed",
        error="unreadable image: [Errno 2] No such file or directory: "
        "'/srv/shop/media/products/boots.png'",
    )
    body = client_for(editor).get(detail_url(ready_suggestion.pk)).json()
    assert "/srv/" not in body["error"] and "boots.png" in body["error"]
