"""Category trees and names: full paths in a constant number of queries, path lookups, the
tree-aware default matcher, and the review page's autocomplete, whose queries do not grow with
the number of categories."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from prodcat_django.matching import match_by_name_or_slug
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from prodcat_django.registry import get_adapter
from prodcat_django.trees import tree_for
from tests.shapes.conftest import CHANGE_SHAPES
from tests.shapes.models import BeardCategory, Category, LabelledItem, MpttCategory, MpttItem
from tests.shop_data import make_user

pytestmark = pytest.mark.django_db


def _mptt(parents: int, children: int) -> list[MpttCategory]:
    """``parents`` roots of ``children`` leaves each: ``"Dept 3 > Item 3.7"``."""
    with MpttCategory.objects.disable_mptt_updates():
        roots = [MpttCategory.objects.create(name=f"Dept {p}") for p in range(parents)]
        MpttCategory.objects.bulk_create(
            MpttCategory(name=f"Item {p}.{c}", parent=root, tree_id=0, lft=0, rght=0, level=0)
            for p, root in enumerate(roots)
            for c in range(children)
        )
    MpttCategory.objects.rebuild()
    return list(MpttCategory.objects.all())


def test_paths_of_many_nodes_take_one_query(django_assert_num_queries):
    nodes = [n for n in _mptt(30, 20) if n.parent_id]  # 630 nodes, 600 leaves
    tree = tree_for(MpttCategory)
    with django_assert_num_queries(1):
        labels = tree.labels(nodes)
    assert len(labels) == 600
    assert labels[nodes[0].pk] == "Dept 0 > Item 0.0"


def test_treebeard_paths_take_one_query(django_assert_num_queries):
    root = BeardCategory.objects.add_root({"name": "Home"})
    kitchen = BeardCategory.objects.add_child(root, {"name": "Kitchen"})
    mugs = BeardCategory.objects.add_child(
        BeardCategory.objects.get(pk=kitchen.pk), {"name": "Mugs"}
    )
    nodes = list(BeardCategory.objects.filter(pk__in=[mugs.pk, kitchen.pk]))
    with django_assert_num_queries(1):
        labels = tree_for(BeardCategory).labels(nodes)
    assert labels == {mugs.pk: "Home > Kitchen > Mugs", kitchen.pk: "Home > Kitchen"}


def test_tree_matcher_resolves_duplicate_leaves_by_path_not_by_pk(settings):
    sale = MpttCategory.objects.create(name="Sale")
    sale_heels = MpttCategory.objects.create(name="Heels", parent=sale)  # the lowest pk
    footwear = MpttCategory.objects.create(name="Footwear")
    heels = MpttCategory.objects.create(name="Heels", parent=footwear)
    assert match_by_name_or_slug("Heels", MpttCategory) is None  # ambiguous: no guess
    assert match_by_name_or_slug("Footwear > Heels", MpttCategory) == heels
    settings.PRODCAT = {**settings.PRODCAT, "LABEL_PATHS": {"Heels": "Sale > Heels"}}
    assert match_by_name_or_slug("Heels", MpttCategory) == sale_heels
    # A leaf beats an inner node of the same name.
    bags = MpttCategory.objects.create(name="Bags")
    MpttCategory.objects.create(name="Totes", parent=bags)
    leaf_bags = MpttCategory.objects.create(name="Bags", parent=sale)
    assert match_by_name_or_slug("Bags", MpttCategory) == leaf_bags


def test_resolve_accepts_pk_path_and_name_and_explains_ambiguity():
    adapter = get_adapter(MpttItem)
    footwear = MpttCategory.objects.create(name="Footwear")
    heels = MpttCategory.objects.create(name="Heels", parent=footwear)
    sale = MpttCategory.objects.create(name="Sale")
    MpttCategory.objects.create(name="Heels", parent=sale)
    assert adapter.resolve_category(str(heels.pk)) == heels
    assert adapter.resolve_category("footwear > heels") == heels
    assert adapter.resolve_category("Footwear") == footwear
    with pytest.raises(ValidationError, match="names several categories") as exc:
        adapter.resolve_category("Heels")
    assert "Footwear > Heels" in str(exc.value)
    with pytest.raises(ValidationError, match="no mptt category with the id, path or name"):
        adapter.resolve_category("Clogs")


def test_search_by_name_or_path_fragment():
    _mptt(3, 4)
    adapter = get_adapter(MpttItem)
    assert adapter.search_categories("item 1.2") == [(str(_pk("Item 1.2")), "Dept 1 > Item 1.2")]
    found = adapter.search_categories("dept 2 > item")
    assert [label for _, label in found] == [f"Dept 2 > Item 2.{c}" for c in range(4)]


def _pk(name: str) -> int:
    return MpttCategory.objects.get(name=name).pk


def test_char_field_names_with_and_without_choices():
    adapter = get_adapter(LabelledItem)
    assert adapter.category_model is None
    assert adapter.resolve_category("  Loafers ") == "Loafers"
    with pytest.raises(ValidationError, match="at most 100 characters"):
        adapter.resolve_category("x" * 101)
    LabelledItem.objects.create(title="a", category="Loafers")
    assert ("Loafers", "Loafers") in adapter.search_categories("loaf")


# --------------------------------------------------------------------------- the review page


@pytest.fixture
def review_client(settings, client: Client) -> Client:
    settings.ROOT_URLCONF = "tests.admin.urls"
    user = make_user(
        "reviewer",
        "view_categorysuggestion",
        "review_categorysuggestion",
        *CHANGE_SHAPES,
        is_staff=True,
    )
    client.force_login(user)
    return client


def _ready_suggestion(title: str = "Leather brogues") -> CategorySuggestion:
    item = MpttItem.objects.create(title=title)
    suggestion = CategorySuggestion.objects.current_for(item).get()
    CategorySuggestion.objects.filter(pk=suggestion.pk).update(
        status=SuggestionStatus.READY, label="Shoes", labels=[{"label": "Shoes", "score": 0.9}]
    )
    suggestion.refresh_from_db()
    return suggestion


def _page_queries(client, suggestion) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("admin:prodcat_django_categorysuggestion_change", args=[suggestion.pk])
    client.get(url)  # warm the session, permission and content type caches
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert 'data-prodcat-category-search="' in response.content.decode()
    return len(queries)


def test_review_page_queries_do_not_grow_with_the_categories(review_client):
    _mptt(2, 4)  # 10 categories
    suggestion = _ready_suggestion()
    few = _page_queries(review_client, suggestion)
    _mptt(20, 30)  # 620 more: 630 in all
    assert MpttCategory.objects.count() == 630
    many = _page_queries(review_client, suggestion)
    assert many == few
    print(f"review page: {few} queries with 10 categories, {many} with 630")


def test_category_search_endpoint_is_constant_queries(review_client, django_assert_num_queries):
    _mptt(30, 20)
    suggestion = _ready_suggestion()
    url = reverse("admin:prodcat_django_categorysuggestion_categories")
    params = {"content_type": suggestion.content_type_id, "q": "dept 7 > item 7.1"}
    review_client.get(url, params)  # warm the session and content type caches
    # Session, user and its two permission lookups; then the search itself: the matching
    # names, and their ancestors (one query each, whatever the number of categories).
    with django_assert_num_queries(6):
        body = review_client.get(url, params).json()
    labels = [r["label"] for r in body["results"]]
    assert labels[0] == "Dept 7 > Item 7.1"
    assert all(label.startswith("Dept 7 > Item 7.1") for label in labels)
    assert review_client.get(url, {"content_type": "x", "q": "a"}).status_code == 400


def test_reject_with_a_path_typed_in_the_autocomplete(review_client):
    _mptt(2, 2)
    suggestion = _ready_suggestion()
    url = reverse("admin:prodcat_django_categorysuggestion_review", args=[suggestion.pk])
    review_client.post(url, {"decision": "correct", "category": "Dept 1 > Item 1.1"})
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.REJECTED
    assert MpttItem.objects.get(pk=suggestion.object_id).category.name == "Item 1.1"


def test_reject_with_category_action_shows_paths(review_client):
    _mptt(2, 2)
    first, second = _ready_suggestion("a"), _ready_suggestion("b")
    url = reverse("admin:prodcat_django_categorysuggestion_changelist")
    response = review_client.post(
        url,
        {
            "action": "reject_with_category",
            ACTION_CHECKBOX_NAME: [first.pk, second.pk],
            "index": 0,
            "post": "yes",
            "category": "Dept 0 > Item 0.1",
        },
        follow=True,
    )
    assert response.status_code == 200
    for suggestion in (first, second):
        suggestion.refresh_from_db()
        assert suggestion.status == SuggestionStatus.REJECTED
    messages = [str(m) for m in response.context["messages"]]
    assert any("filed them under Dept 0 > Item 0.1" in m for m in messages)


def test_flat_categories_keep_their_str():
    category = Category.objects.create(name="Shoes")
    assert get_adapter(LabelledItem).category_label("Shoes") == "Shoes"
    from tests.shapes.models import Article

    assert get_adapter(Article).category_label(category) == "Shoes"
