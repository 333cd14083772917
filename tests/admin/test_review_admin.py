"""The suggestion review admin: list, filters, actions, permissions, detail page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse

from prodcat_django.admin import CategorySuggestionAdmin
from prodcat_django.models import (
    CategorySuggestion,
    SuggestionDecision,
    SuggestionStatus,
)
from tests.shop_data import make_user, png_bytes
from tests.testapp.models import Product

CHANGELIST = "admin:prodcat_django_categorysuggestion_changelist"
pytestmark = pytest.mark.django_db


def changelist_url(**params: Any) -> str:
    from django.utils.http import urlencode

    url = reverse(CHANGELIST)
    return f"{url}?{urlencode(params)}" if params else url


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def run_action(client, action: str, suggestions, **extra: Any):
    data = {
        "action": action,
        ACTION_CHECKBOX_NAME: [s.pk for s in suggestions],
        "index": 0,
        **extra,
    }
    # "Everything": the default view (what needs review) would leave other rows out.
    return client.post(changelist_url(needs="all"), data, follow=True)


def product_of(suggestion: CategorySuggestion) -> Product:
    return Product.objects.get(pk=suggestion.object_id)


# --------------------------------------------------------------------------- the list


def test_changelist_shows_thumbnail_title_bars_status_and_version(reviewer_client, make_suggestion):
    make_suggestion(
        "Trail running shoes",
        [("Shoes", 0.91), ("Bags", 0.06), ("Watches", 0.03)],
        image=png_bytes("blue"),
    )
    html = reviewer_client.get(changelist_url()).content.decode()

    assert "Trail running shoes" in html
    assert re.search(r'<img class="prodcat-thumb" src="/media/products/[^"]+\.png"', html)
    assert 'loading="lazy"' in html
    # Three bars, best first, each with its percentage as text.
    bars = re.findall(r'class="prodcat-label">([^<]+)<.*?width: (\d+)%.*?prodcat-pct">(\d+)%', html)
    assert bars == [("Shoes", "91", "91"), ("Bags", "6", "6"), ("Watches", "3", "3")]
    assert "prodcat-bar--high" in html  # 91% is drawn in the confident colour
    assert "prodcat-status--ready" in html
    assert "prodcat_django/admin.css" in html


def test_product_without_photo_and_deleted_product_render(reviewer_client, make_suggestion):
    make_suggestion("No photo here")
    gone = make_suggestion("Soon deleted")
    product_of(gone).delete()  # the suggestion stays, retired, for the history
    html = reviewer_client.get(changelist_url(status__exact="obsolete")).content.decode()
    assert f"(deleted product #{gone.object_id})" in html
    html = reviewer_client.get(changelist_url(status__exact="ready")).content.decode()
    assert "prodcat-thumb--empty" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "failed"}, {"broken"}),
        ({"label": "Watches"}, {"watch"}),
        ({"score_band": "low"}, {"unsure"}),
        ({"score_band": "mid"}, {"boots"}),
        ({"score_band": "high"}, {"watch"}),
        # The tiny test checkpoint's validated threshold is 0.5.
        ({"score_band": "auto"}, {"boots", "watch"}),
    ],
)
def test_filters(reviewer_client, make_suggestion, model_checkpoint, params, expected):
    make_suggestion("boots", [("Shoes", 0.7), ("Bags", 0.3)])
    make_suggestion("watch", [("Watches", 0.95), ("Bags", 0.05)])
    make_suggestion("unsure", [("Bags", 0.4), ("Shoes", 0.35)])
    make_suggestion("broken", [], status=SuggestionStatus.FAILED, error="cannot decode image")

    response = reviewer_client.get(changelist_url(**params))
    shown = {s.pk for s in response.context["cl"].result_list}
    titles = {product_of(s).title for s in CategorySuggestion.objects.filter(pk__in=shown)}
    assert titles == expected


def test_label_filter_lists_the_predicted_labels(reviewer_client, make_suggestion):
    make_suggestion("boots", [("Shoes", 0.7)])
    make_suggestion("watch", [("Watches", 0.95)])
    html = reviewer_client.get(changelist_url()).content.decode()
    assert "?label=Shoes" in html and "?label=Watches" in html


def test_batch_filter(reviewer_client, make_product, categories):
    from prodcat_django import services

    make_product("outside the batch")
    inside = [make_product(f"bulk {i}") for i in range(3)]
    batch = services.request_suggestions(Product.objects.filter(pk__in=[p.pk for p in inside]))
    response = reviewer_client.get(changelist_url(batch=batch.pk))
    assert {s.object_id for s in response.context["cl"].result_list} == {str(p.pk) for p in inside}
    assert reviewer_client.get(changelist_url(batch="nonsense")).status_code == 200


def test_changelist_query_count_does_not_grow_with_rows(
    reviewer_client, make_suggestion, django_assert_max_num_queries
):
    def render() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert reviewer_client.get(changelist_url()).status_code == 200
        return len(ctx.captured_queries)

    for i in range(3):
        make_suggestion(f"product {i}", image=png_bytes())
    few = render()
    for i in range(3, 30):
        make_suggestion(f"product {i}", image=png_bytes())
    many = render()
    assert many == few  # no query per row (thumbnails, titles, reviewers)
    with django_assert_max_num_queries(15):
        reviewer_client.get(changelist_url())


# --------------------------------------------------------------------------- actions


def test_accept_action_sets_category_and_records_who_and_when(
    reviewer_client, reviewer, make_suggestion, categories
):
    first = make_suggestion("boots", [("Shoes", 0.8)])
    second = make_suggestion("watch", [("Watches", 0.9)])
    response = run_action(reviewer_client, "accept_selected", [first, second])

    assert "Accepted 2 suggestions." in messages_of(response)
    assert product_of(first).category == categories["Shoes"]
    assert product_of(second).category == categories["Watches"]
    first.refresh_from_db()
    assert first.status == SuggestionStatus.ACCEPTED
    assert first.reviewed_by == reviewer and first.reviewed_at is not None
    assert SuggestionDecision.objects.filter(suggestion=first, username="reviewer").exists()
    # Decided rows leave the default view (what needs review); "Everything" shows them.
    assert not reviewer_client.get(changelist_url()).context["cl"].result_list
    html = reviewer_client.get(changelist_url(needs="all")).content.decode()
    assert re.search(r"prodcat-status--accepted.*?by reviewer<br>\d{4}-", html, re.S)
    assert "Accepted by reviewer" in html  # the decide column no longer offers Accept


def test_accept_reports_rows_it_cannot_accept(reviewer_client, make_suggestion, categories):
    ready = make_suggestion("boots", [("Shoes", 0.8)])
    pending = make_suggestion("new", [], status=SuggestionStatus.PENDING)
    unmatched = make_suggestion("odd", [("Garden", 0.9)])  # no shop category of that name
    response = run_action(reviewer_client, "accept_selected", [ready, pending, unmatched])

    texts = messages_of(response)
    assert "Accepted 1 suggestion." in texts
    skipped = next(t for t in texts if t.startswith("Skipped 2 suggestions"))
    assert "cannot be reviewed yet" in skipped and "Garden" in skipped
    assert product_of(pending).category is None and product_of(unmatched).category is None


def test_reject_action_keeps_the_category(reviewer_client, make_suggestion):
    suggestion = make_suggestion("boots", [("Shoes", 0.8)])
    response = run_action(reviewer_client, "reject_selected", [suggestion])
    assert "Rejected 1 suggestion." in messages_of(response)
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.REJECTED
    assert product_of(suggestion).category is None


def test_reject_with_category_intermediate_page(reviewer_client, make_suggestion, categories):
    first = make_suggestion("tote", [("Shoes", 0.6)])
    second = make_suggestion("clutch", [("Watches", 0.5)])
    page = run_action(reviewer_client, "reject_with_category", [first, second])

    html = page.content.decode()
    assert page.templates[0].name == "admin/prodcat_django/reject_with_category.html"
    # The category is typed with an autocomplete (no list of every category in the page).
    assert 'data-prodcat-category-search="' in html
    assert "prodcat_django/category_autocomplete.js" in html
    assert CategorySuggestion.objects.get(pk=first.pk).status == SuggestionStatus.READY

    response = run_action(
        reviewer_client,
        "reject_with_category",
        [first, second],
        post="yes",
        category=categories["Bags"].pk,
    )
    assert "Rejected 2 suggestions and filed them under Bags." in messages_of(response)
    for suggestion in (first, second):
        suggestion.refresh_from_db()
        assert suggestion.status == SuggestionStatus.REJECTED
        assert suggestion.correction_pk == str(categories["Bags"].pk)
        assert product_of(suggestion).category == categories["Bags"]


def test_reject_with_category_needs_a_valid_choice(reviewer_client, make_suggestion):
    suggestion = make_suggestion("tote")
    page = run_action(
        reviewer_client, "reject_with_category", [suggestion], post="yes", category="999999"
    )
    # The page again, with the error.
    assert "There is no category with the id, path or name" in page.content.decode()
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.READY


# --------------------------------------------------------------------------- permissions


def test_user_without_review_permission_sees_no_actions(clerk_client, make_suggestion):
    make_suggestion("boots")
    response = clerk_client.get(changelist_url())
    assert response.status_code == 200
    form = response.context["action_form"]  # None: no action at all is offered
    choices = [] if form is None else [v for v, _ in form.fields["action"].choices]
    assert not {"accept_selected", "reject_selected", "reject_with_category"} & set(choices)
    assert "Accept the suggested category" not in response.content.decode()


def test_forged_action_post_changes_nothing(clerk_client, make_suggestion):
    suggestion = make_suggestion("boots", [("Shoes", 0.8)])
    response = run_action(clerk_client, "accept_selected", [suggestion])
    assert response.status_code == 200
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.READY
    assert product_of(suggestion).category is None
    assert not SuggestionDecision.objects.exists()


def test_action_refused_by_the_service_layer_reports_permission_denied(rf, clerk, make_suggestion):
    """Even if an action is reached without the permission, services.accept refuses it."""
    from django.contrib.messages.storage.fallback import FallbackStorage

    from tests.admin.site import site

    suggestion = make_suggestion("boots", [("Shoes", 0.8)])
    model_admin = site.get_model_admin(CategorySuggestion)
    request = rf.post("/")
    request.user = clerk
    request.session = {}
    request._messages = FallbackStorage(request)
    model_admin.accept_selected(request, CategorySuggestion.objects.filter(pk=suggestion.pk))

    assert [str(m) for m in request._messages] == [
        "You do not have permission to review category suggestions."
    ]
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.READY


def test_forged_review_post_on_the_change_page_is_refused(clerk_client, make_suggestion):
    suggestion = make_suggestion("boots", [("Shoes", 0.8)])
    url = reverse("admin:prodcat_django_categorysuggestion_review", args=[suggestion.pk])
    response = clerk_client.post(url, {"decision": "accept"}, follow=True)
    assert "You do not have permission to review category suggestions." in messages_of(response)
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.READY
    assert product_of(suggestion).category is None


def test_anonymous_users_are_sent_to_login(client, make_suggestion):
    response = client.get(changelist_url())
    assert response.status_code == 302 and "/login/" in response["Location"]


# --------------------------------------------------------------------------- detail page


def test_change_page_is_read_only_with_lazy_explanation_and_review_forms(
    reviewer_client, make_suggestion
):
    suggestion = make_suggestion("boots", [("Shoes", 0.8)], image=png_bytes())
    url = reverse("admin:prodcat_django_categorysuggestion_change", args=[suggestion.pk])
    html = reviewer_client.get(url).content.decode()

    explain_url = reverse(
        "admin:prodcat_django_categorysuggestion_explanation", args=[suggestion.pk]
    )
    assert f'data-prodcat-explain-url="{explain_url}"' in html
    assert "prodcat_django/explanation.js" in html
    assert 'name="decision" value="accept"' in html
    assert 'name="_save"' not in html  # nothing is edited through the form


def test_change_page_accept_button(reviewer_client, make_suggestion, categories):
    suggestion = make_suggestion("boots", [("Shoes", 0.8)])
    url = reverse("admin:prodcat_django_categorysuggestion_review", args=[suggestion.pk])
    response = reviewer_client.post(url, {"decision": "accept"}, follow=True)
    assert "Suggestion accepted." in messages_of(response)
    assert product_of(suggestion).category == categories["Shoes"]
    html = response.content.decode()
    assert re.search(r"by reviewer<br>\d{4}-\d\d-\d\d \d\d:\d\d", html)  # who and when


def test_change_page_correct_button(reviewer_client, make_suggestion, categories):
    suggestion = make_suggestion("boots", [("Shoes", 0.8)])
    url = reverse("admin:prodcat_django_categorysuggestion_review", args=[suggestion.pk])
    response = reviewer_client.post(
        url, {"decision": "correct", "category": categories["Bags"].pk}, follow=True
    )
    assert "Suggestion rejected." in messages_of(response)
    assert product_of(suggestion).category == categories["Bags"]
    assert reviewer_client.get(url).status_code == 405


def _explanation_html(client, suggestion: CategorySuggestion) -> str:
    url = reverse("admin:prodcat_django_categorysuggestion_explanation", args=[suggestion.pk])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_explanation_fragment_of_a_worker_run_suggestion(
    reviewer_client, make_suggestion, model_checkpoint, monkeypatch
):
    from prodcat_django import classifier, services

    suggestion = make_suggestion(
        "leather ankle boots", status=SuggestionStatus.PENDING, image=png_bytes("green")
    )
    assert services.run_suggestions([suggestion.pk]).ready == [suggestion.pk]
    suggestion.refresh_from_db()
    assert sum(map(sum, suggestion.explanation["regions"])) == pytest.approx(1.0, abs=1e-4)

    # The web process shows what the worker stored: no model is loaded for it.
    classifier.clear_cache()
    monkeypatch.setattr(classifier, "get_predictor", _no_model_in_the_web_process)
    html = _explanation_html(reviewer_client, suggestion)
    assert not classifier._predictors

    assert html.count('class="prodcat-heatmap__cell"') == 49
    assert [w for w in ("leather", "ankle", "boots") if w in html] == ["leather", "ankle", "boots"]
    assert "Attention on the title:" in html
    assert suggestion.labels[0]["label"] in html


def _no_model_in_the_web_process() -> None:
    raise AssertionError("the explanation view must not load the model")


def test_explanation_fragment_renders_stored_data_only(
    reviewer_client, make_suggestion, monkeypatch
):
    from prodcat_django import classifier

    regions = [[0.0] * 7 for _ in range(7)]
    regions[2][3] = 1.0
    suggestion = make_suggestion(
        "wool scarf",
        [("Bags", 0.7), ("Shoes", 0.3)],
        image=png_bytes("blue"),
        explanation={
            "tokens": [["wool", 0.25], ["scarf", 0.75]],
            "regions": regions,
            "modality_weight": {"text": 0.4, "image": 0.6},
        },
    )
    classifier.clear_cache()
    monkeypatch.setattr(classifier, "get_predictor", _no_model_in_the_web_process)
    html = _explanation_html(reviewer_client, suggestion)
    assert not classifier._predictors
    assert "row 3, column 4: 100.0%" in html
    assert "Attention on the title: 40%, on the photo: 60%." in html
    assert "wool" in html and "scarf" in html and "Bags" in html


def test_explanation_error_is_shown_not_raised(reviewer_client, make_suggestion):
    suggestion = make_suggestion("boots")  # made as before explanations were stored
    html = _explanation_html(reviewer_client, suggestion)
    assert "ask for a new suggestion" in html
    assert 'class="prodcat-heatmap__cell"' not in html


def test_search_by_label_or_product_id(reviewer_client, make_suggestion):
    boots = make_suggestion("boots", [("Shoes", 0.7)])
    make_suggestion("watch", [("Watches", 0.9)])
    by_label = reviewer_client.get(changelist_url(q="watches")).context["cl"].result_list
    assert [product_of(s).title for s in by_label] == ["watch"]
    by_id = reviewer_client.get(changelist_url(q=boots.object_id)).context["cl"].result_list
    assert [s.pk for s in by_id] == [boots.pk]


# --------------------------------------------------------------------------- the queue


def test_default_view_is_what_needs_review(reviewer_client, make_suggestion):
    ready = make_suggestion("boots", [("Shoes", 0.8)])
    make_suggestion("new", [], status=SuggestionStatus.PENDING)
    make_suggestion("done", [("Bags", 0.9)], status=SuggestionStatus.ACCEPTED)
    old = make_suggestion("old", [("Bags", 0.9)])
    CategorySuggestion.objects.filter(pk=old.pk).update(
        is_current=False, status=SuggestionStatus.OBSOLETE
    )
    response = reviewer_client.get(changelist_url())
    assert [s.pk for s in response.context["cl"].result_list] == [ready.pk]
    superseded = reviewer_client.get(changelist_url(needs="superseded"))
    assert [s.pk for s in superseded.context["cl"].result_list] == [old.pk]
    assert len(reviewer_client.get(changelist_url(needs="all")).context["cl"].result_list) == 4


def test_search_by_product_title_and_sort_by_score(reviewer_client, make_suggestion):
    boots = make_suggestion("Leather ankle boots", [("Shoes", 0.6)])
    sandals = make_suggestion("Summer sandals", [("Shoes", 0.9)])
    make_suggestion("Diver watch", [("Watches", 0.7)])
    found = reviewer_client.get(changelist_url(q="ankle")).context["cl"].result_list
    assert [s.pk for s in found] == [boots.pk]
    columns = CategorySuggestionAdmin.list_display
    order = reviewer_client.get(changelist_url(o=f"-{columns.index('top_labels') + 1}"))
    assert next(s.pk for s in order.context["cl"].result_list) == sandals.pk


def test_rows_show_the_current_category_and_file_under(
    reviewer_client, make_suggestion, categories
):
    suggestion = make_suggestion("tote", [("Shoes", 0.6)])
    Product.objects.filter(pk=suggestion.object_id).update(category=categories["Watches"])
    html = reviewer_client.get(changelist_url()).content.decode()
    assert re.search(r'class="field-current_category">Watches<', html)
    quick = reverse("admin:prodcat_django_categorysuggestion_quick", args=[suggestion.pk])
    response = reviewer_client.post(
        quick,
        {"decision": "file", f"prodcat_category_{suggestion.pk}": categories["Bags"].pk},
        HTTP_ACCEPT="application/json",
    )
    assert response.json()["ok"] is True
    assert response.json()["message"] == "Filed tote under Bags."
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.REJECTED
    assert suggestion.correction_pk == str(categories["Bags"].pk)


def test_accept_and_next_opens_the_next_suggestion(reviewer_client, make_suggestion):
    older = make_suggestion("older", [("Shoes", 0.8)])
    newer = make_suggestion("newer", [("Bags", 0.8)])
    url = reverse("admin:prodcat_django_categorysuggestion_review", args=[newer.pk])
    response = reviewer_client.post(url, {"decision": "accept", "and_next": "1"})
    assert response.url == reverse(
        "admin:prodcat_django_categorysuggestion_change", args=[older.pk]
    )
    page = reviewer_client.get(
        reverse("admin:prodcat_django_categorysuggestion_change", args=[newer.pk])
    ).content.decode()
    assert "Accept and next" not in page and "decided already" in page


def test_index_says_how_many_wait(reviewer_client, make_suggestion):
    make_suggestion("boots", [("Shoes", 0.8)])
    make_suggestion("bag", [("Bags", 0.8)])
    html = reviewer_client.get(reverse("admin:index")).content.decode()
    assert "<strong>2</strong> suggestions wait for review." in html


def test_stuck_suggestions_warn_with_what_to_start(reviewer_client, make_suggestion, settings):
    settings.PRODCAT = {**settings.PRODCAT, "DISPATCH_LEASE": 0}
    make_suggestion("boots", [], status=SuggestionStatus.PENDING, dispatched_at=None)
    for url in (reverse("admin:index"), changelist_url()):
        html = reviewer_client.get(url).content.decode()
        assert "no worker has taken" in html
        assert "worker -Q prodcat" in html


def test_explanation_page_without_javascript_is_a_whole_page(reviewer_client, make_suggestion):
    suggestion = make_suggestion("boots")
    url = reverse("admin:prodcat_django_categorysuggestion_explanation", args=[suggestion.pk])
    alone = reviewer_client.get(url).content.decode()
    assert '<div class="breadcrumbs">' in alone and "prodcat-explain" in alone
    fragment = reviewer_client.get(url, HTTP_X_REQUESTED_WITH="XMLHttpRequest").content.decode()
    assert "breadcrumbs" not in fragment


def test_try_it_page_points_at_the_same_sites_suggest_endpoint(reviewer_client, clerk_client):
    url = reverse("admin:prodcat_django_categorysuggestion_try")
    html = reviewer_client.get(url).content.decode()
    assert f'data-suggest-url="{reverse("prodcat_api:suggest")}"' in html
    assert "csrfmiddlewaretoken" in html
    assert clerk_client.get(url).status_code == 200  # viewing suggestions is enough


# ------------------------------------------------------- decisions are not silently reversed


def _change_html(client, suggestion: CategorySuggestion) -> str:
    url = reverse("admin:prodcat_django_categorysuggestion_change", args=[suggestion.pk])
    return client.get(url).content.decode()


def test_an_accepted_suggestion_offers_no_second_accept_and_asks_before_reversing(
    reviewer_client, make_suggestion, categories
):
    suggestion = make_suggestion("boots", [("Shoes", 0.8)])
    url = reverse("admin:prodcat_django_categorysuggestion_review", args=[suggestion.pk])
    reviewer_client.post(url, {"decision": "accept"})
    html = _change_html(reviewer_client, suggestion)
    assert 'value="accept"' not in html
    assert "Change the decision: reject" in html and 'name="override" value="1"' in html
    # A forged plain second accept, or a reject without override, changes nothing.
    reviewer_client.post(url, {"decision": "accept"})
    response = reviewer_client.post(url, {"decision": "reject"}, follow=True)
    assert any("already accepted" in m for m in messages_of(response))
    assert SuggestionDecision.objects.count() == 1
    assert product_of(suggestion).category == categories["Shoes"]


def test_accept_after_a_manual_change_asks_for_confirmation(
    reviewer_client, make_suggestion, categories
):
    suggestion = make_suggestion("boots", [("Shoes", 0.8)], product_category_pk="")
    Product.objects.filter(pk=suggestion.object_id).update(category=categories["Bags"])
    html = _change_html(reviewer_client, suggestion)
    assert "Accept anyway, replacing the current category" in html
    url = reverse("admin:prodcat_django_categorysuggestion_review", args=[suggestion.pk])
    response = reviewer_client.post(url, {"decision": "accept"}, follow=True)
    assert any("changed since this suggestion was made" in m for m in messages_of(response))
    assert product_of(suggestion).category == categories["Bags"]
    reviewer_client.post(url, {"decision": "accept", "confirm_category_change": "1"})
    assert product_of(suggestion).category == categories["Shoes"]


def test_review_permission_without_change_permission_cannot_set_categories(
    client, make_suggestion, categories
):
    user = make_user(
        "looker", "view_categorysuggestion", "review_categorysuggestion", is_staff=True
    )
    client.force_login(user)
    suggestion = make_suggestion("boots", [("Shoes", 0.8)])
    html = _change_html(client, suggestion)
    assert 'value="accept"' not in html and 'value="correct"' not in html
    response = run_action(client, "accept_selected", [suggestion])
    assert any("testapp.change_product" in m for m in messages_of(response))
    assert product_of(suggestion).category is None
    assert not SuggestionDecision.objects.exists()


def test_failed_suggestions_can_be_retried_from_the_page_and_the_list(
    reviewer_client, make_suggestion
):
    failed = make_suggestion("boots", [], status=SuggestionStatus.FAILED, error="model error")
    other = make_suggestion("bag", [("Bags", 0.9)])
    assert "Retry: ask the model again" in _change_html(reviewer_client, failed)
    response = run_action(reviewer_client, "retry_selected", [failed, other])
    text = " ".join(messages_of(response))
    assert "Queued again 1 suggestion." in text and "Skipped 1 suggestion" in text
    fresh = CategorySuggestion.objects.current_for(product_of(failed)).get()
    assert fresh.pk != failed.pk and fresh.status == SuggestionStatus.PENDING
