"""The out-of-taxonomy verdict and the neighbour head's labels in the review admin."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from django.urls import reverse

from prodcat_django.index import to_bytes
from prodcat_django.models import NeighbourVector, SuggestionStatus
from tests.admin.test_review_admin import changelist_url, product_of

pytestmark = pytest.mark.django_db

FLAG = {
    "out_of_taxonomy": True,
    "ood_score": 0.97,
    "ood_threshold": 0.91,
    "ood_reason": "far from every category",
}


def change_url(suggestion: Any) -> str:
    return reverse("admin:prodcat_django_categorysuggestion_change", args=[suggestion.pk])


def test_a_flagged_suggestion_says_it_may_not_fit_and_offers_file_under_first(
    reviewer_client, make_suggestion
):
    flagged = make_suggestion("Temple at dusk", [("Watches", 0.84), ("Bags", 0.1)], **FLAG)
    html = reviewer_client.get(change_url(flagged)).content.decode()

    assert "This product may not fit any of your categories." in html
    assert "far from every category; score 0.97, flagged above 0.91" in html
    flag = html[html.index('id="prodcat-flag"') :]
    flag = flag[: flag.index("</div>")]
    # "File under…" is the main (default) action, with a way to create the category.
    assert "File under…" in flag
    assert re.search(r'class="button default"[^>]*>File under this category', flag)
    assert reverse("admin:testapp_category_add") in flag
    # Accept is still possible, but quiet: no default button, no keyboard shortcut.
    assert "Accept Watches anyway" in html
    assert "Accept and next" not in html
    assert 'data-prodcat-key="a"' not in html


def test_an_unflagged_suggestion_keeps_accept_as_the_main_action(reviewer_client, make_suggestion):
    plain = make_suggestion("Leather ankle boots")
    html = reviewer_client.get(change_url(plain)).content.decode()
    assert "may not fit" not in html
    assert "Accept and next" in html


def test_filing_a_flagged_suggestion_files_the_product_and_learns_it(
    reviewer_client, make_suggestion, categories, django_capture_on_commit_callbacks
):
    flagged = make_suggestion(
        "Ceramic vase",
        [("Watches", 0.6)],
        embedding=to_bytes(np.ones(8, dtype=np.float32)),
        embedding_id="test-space",
        **FLAG,
    )
    url = reverse("admin:prodcat_django_categorysuggestion_review", args=[flagged.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = reviewer_client.post(url, {"decision": "correct", "category": "Home Decor"})
    assert response.status_code == 302
    flagged.refresh_from_db()
    assert flagged.status == SuggestionStatus.REJECTED
    assert product_of(flagged).category == categories["Home Decor"]
    row = NeighbourVector.objects.get(object_id=flagged.object_id, source="merchant")
    assert row.category_pk == str(categories["Home Decor"].pk)
    assert row.embedding_id == "test-space" and row.dim == 8


def test_the_review_list_filters_on_the_verdict_and_rows_offer_file_under(
    reviewer_client, make_suggestion
):
    make_suggestion("Temple at dusk", [("Watches", 0.84)], **FLAG)
    make_suggestion("Leather ankle boots")
    html = reviewer_client.get(changelist_url(fit="no")).content.decode()
    assert "Temple at dusk" in html and "Leather ankle boots" not in html
    assert "may not fit any of your categories" in html
    assert '<details class="prodcat-file-under" open>' in html
    assert 'value="accept" data-prodcat-quick' not in html  # no row Accept for it
    html = reviewer_client.get(changelist_url(fit="yes")).content.decode()
    assert "Leather ankle boots" in html and "Temple at dusk" not in html
    assert "May not fit any category" in html  # the filter's choice


def test_labels_say_where_they_came_from(reviewer_client, make_suggestion):
    suggestion = make_suggestion("White mug", [("Home Decor", 0.7), ("Bags", 0.2)])
    suggestion.labels = [
        {"label": "Home Decor", "score": 0.7, "source": "neighbours"},
        {"label": "Bags", "score": 0.2, "source": "name"},
        {"label": "Shoes", "score": 0.1, "source": "model"},
    ]
    suggestion.save()
    html = reviewer_client.get(change_url(suggestion)).content.decode()
    labels = re.findall(r'class="prodcat-label">([^<]+)<', html)
    assert labels[:3] == [
        "Home Decor (from similar products)",
        "Bags (from the category name)",
        "Shoes",
    ]
