"""The shop's product admin: the "Suggest categories" action, its confirmation page, the
category_suggestion column, the batch progress page, and enable_suggestions()."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from prodcat_django.admin import enable_suggestions
from prodcat_django.models import CategorySuggestion, SuggestionBatch, SuggestionStatus
from tests.admin.site import LegacyProductAdmin
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def products(make_product) -> list[Product]:
    return [make_product(f"product {i:02d}") for i in range(12)]


@pytest.fixture
def small_threshold(settings: Any) -> None:
    # tests/settings.py: BULK_CHUNK_SIZE 5. Confirm above 10 products.
    settings.PRODCAT = {**settings.PRODCAT, "BULK_CONFIRM_THRESHOLD": 10}


def suggest(client, selected, *, site: str = "admin", query: str = "", **extra: Any):
    url = reverse(f"{site}:testapp_product_changelist") + query
    data = {"action": "suggest_categories", ACTION_CHECKBOX_NAME: selected, "index": 0, **extra}
    return client.post(url, data, follow=True)


def batch_suggestions(batch: SuggestionBatch) -> set[str]:
    return set(CategorySuggestion.objects.filter(batch=batch).values_list("object_id", flat=True))


def test_small_selection_is_queued_at_once(
    reviewer_client, products, small_threshold, django_capture_on_commit_callbacks
):
    chosen = products[:7]
    with django_capture_on_commit_callbacks() as callbacks:
        response = suggest(reviewer_client, [p.pk for p in chosen])

    assert "Queued 7 products in 2 tasks." in " ".join(messages_of(response))
    batch = SuggestionBatch.objects.get()
    assert batch.total == 7 and batch.created_by.username == "reviewer"
    assert batch_suggestions(batch) == {str(p.pk) for p in chosen}
    assert len(callbacks) == 2  # one Celery task per chunk of 5, sent after commit
    progress = reverse("admin:prodcat_django_suggestionbatch_progress", args=[batch.pk])
    assert f'href="{progress}"' in response.content.decode()


def test_large_selection_asks_for_confirmation_first(reviewer_client, products, small_threshold):
    page = suggest(reviewer_client, [p.pk for p in products])

    assert page.templates[0].name == "admin/prodcat_django/suggest_confirmation.html"
    html = page.content.decode()
    assert "Queue category suggestions for 12 products?" in html
    assert "about 3 tasks" in html
    assert len(re.findall(rf'name="{ACTION_CHECKBOX_NAME}"', html)) == 12
    assert not SuggestionBatch.objects.exists()  # nothing queued yet

    response = suggest(reviewer_client, [p.pk for p in products], post="yes")
    assert "Queued 12 products in 3 tasks." in " ".join(messages_of(response))
    assert batch_suggestions(SuggestionBatch.objects.get()) == {str(p.pk) for p in products}


def test_at_the_threshold_no_confirmation(reviewer_client, products, small_threshold):
    response = suggest(reviewer_client, [p.pk for p in products[:10]])
    assert "Queued 10 products in 2 tasks." in " ".join(messages_of(response))


def test_select_all_uses_the_filtered_queryset(reviewer_client, products, make_product, settings):
    """ "Select all N" posts one id and select_across=1; the action gets the changelist's
    whole (filtered) queryset, also through the confirmation page."""
    settings.PRODCAT = {**settings.PRODCAT, "BULK_CONFIRM_THRESHOLD": 3}
    extra = [make_product(f"boots {i}") for i in range(4)]
    query = "?q=boots"  # the test ProductAdmin searches titles
    page = suggest(reviewer_client, [extra[0].pk], query=query, select_across="1")
    html = page.content.decode()
    assert "for 4 products" in html
    assert 'name="select_across" value="1"' in html
    response = suggest(reviewer_client, [extra[0].pk], query=query, select_across="1", post="yes")
    assert "Queued 4 products in 1 task." in " ".join(messages_of(response))
    assert batch_suggestions(SuggestionBatch.objects.get()) == {str(p.pk) for p in extra}


def test_user_without_change_permission_gets_no_suggest_action(client, products, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_product"))
    client.force_login(viewer)
    response = client.get(reverse("admin:testapp_product_changelist"))
    assert "Suggest categories" not in response.content.decode()
    suggest(client, [products[0].pk])
    assert not SuggestionBatch.objects.exists()


def test_category_suggestion_column_without_n_plus_one(reviewer_client, make_suggestion):
    make_suggestion("boots", [("Shoes", 0.82)])
    url = reverse("admin:testapp_product_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = reviewer_client.get(url)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    html = reviewer_client.get(url).content.decode()
    assert "prodcat-status--ready" in html and "Shoes 82%" in html
    for i in range(15):
        make_suggestion(f"more {i}")
    assert queries() == few


def test_progress_page_counts_by_status_and_refreshes_until_done(reviewer_client, products):
    from prodcat_django import services

    batch = services.request_suggestions(
        Product.objects.filter(pk__in=[p.pk for p in products[:4]])
    )
    url = reverse("admin:prodcat_django_suggestionbatch_progress", args=[batch.pk])
    html = reviewer_client.get(url).content.decode()
    assert 'http-equiv="refresh"' in html
    assert "0 of 4 suggestions settled" in html

    rows = list(CategorySuggestion.objects.filter(batch=batch).order_by("pk"))
    CategorySuggestion.objects.filter(pk__in=[r.pk for r in rows[:3]]).update(
        status=SuggestionStatus.READY
    )
    CategorySuggestion.objects.filter(pk=rows[3].pk).update(status=SuggestionStatus.FAILED)
    html = reviewer_client.get(url).content.decode()
    assert "Finished: 4 of 4 suggestions settled." in html
    assert 'http-equiv="refresh"' not in html
    assert re.search(r">Suggested</a></td>\s*<td class=\"num\">3<", html)
    assert re.search(r">Could not suggest</a></td>\s*<td class=\"num\">1<", html)


def test_progress_page_accepts_all_at_or_above_the_threshold(
    reviewer_client, products, categories, model_checkpoint
):
    from prodcat_django import services

    batch = services.request_suggestions(
        Product.objects.filter(pk__in=[p.pk for p in products[:3]])
    )
    rows = list(CategorySuggestion.objects.filter(batch=batch).order_by("pk"))
    for row, score in zip(rows, (0.99, 0.95, 0.42), strict=True):
        CategorySuggestion.objects.filter(pk=row.pk).update(
            status=SuggestionStatus.READY,
            label="Shoes",
            score=score,
            labels=[{"label": "Shoes", "score": score}],
            category_pk=str(categories["Shoes"].pk),
        )
    url = reverse("admin:prodcat_django_suggestionbatch_progress", args=[batch.pk])
    html = reviewer_client.get(url).content.decode()
    assert "Accept all 2 suggestions at or above 50%" in html  # the tiny checkpoint's threshold
    assert "products a minute" in html
    response = reviewer_client.post(
        reverse("admin:prodcat_django_suggestionbatch_accept_confident", args=[batch.pk]),
        follow=True,
    )
    assert "Accepted 2 suggestions at or above 50%." in messages_of(response)
    statuses = [CategorySuggestion.objects.get(pk=r.pk).status for r in rows]
    assert statuses == [
        SuggestionStatus.ACCEPTED,
        SuggestionStatus.ACCEPTED,
        SuggestionStatus.READY,
    ]


def test_progress_page_is_private(client, reviewer, products, django_user_model):
    from prodcat_django import services

    batch = services.request_suggestions(Product.objects.all(), user=reviewer)
    url = reverse("admin:prodcat_django_suggestionbatch_progress", args=[batch.pk])
    stranger = django_user_model.objects.create_user("stranger", password="pw", is_staff=True)
    client.force_login(stranger)
    assert client.get(url).status_code == 403
    client.force_login(reviewer)
    assert client.get(url).status_code == 200


# --------------------------------------------------------------------------- enable_suggestions


def test_enable_suggestions_on_a_registered_admin(reviewer_client, products, make_suggestion):
    """tests/admin/site.py registered a plain admin on legacy_site and called the helper."""
    make_suggestion("watch", [("Watches", 0.9)])
    response = reviewer_client.get(reverse("legacy:testapp_product_changelist"))
    html = response.content.decode()
    choices = [v for v, _ in response.context["action_form"].fields["action"].choices]
    assert "mark_free" in choices and "suggest_categories" in choices  # kept its own action
    assert "Watches 90%" in html  # the column
    assert "prodcat_django/admin.css" in html

    queued = suggest(reviewer_client, [products[0].pk], site="legacy")
    assert "Queued 1 product in 1 task." in " ".join(messages_of(queued))
    # The link goes to this site's own progress page.
    assert "/legacy/prodcat_django/suggestionbatch/" in queued.content.decode()


def test_enable_suggestions_is_idempotent_and_checks_its_arguments():
    from tests.admin.site import legacy_site

    model_admin = legacy_site.get_model_admin(Product)
    enable_suggestions(legacy_site, Product)
    assert list(model_admin.get_list_display(None)).count("category_suggestion") == 1

    empty_site = admin.AdminSite(name="empty")
    with pytest.raises(admin.exceptions.NotRegistered):
        enable_suggestions(empty_site, Product)
    with pytest.raises(TypeError):
        enable_suggestions(object(), Product)


def test_enable_suggestions_on_a_class(rf, reviewer):
    class ShopAdmin(LegacyProductAdmin):
        pass

    enable_suggestions(ShopAdmin, Product)
    enable_suggestions(ShopAdmin, Product)  # twice: still one action and one column
    instance = ShopAdmin(Product, admin.AdminSite(name="x"))
    request = rf.get("/")
    request.user = reviewer
    assert "suggest_categories" in instance.get_actions(request)
    display = instance.get_list_display(request)
    assert [getattr(c, "__name__", c) for c in display].count("category_suggestion") == 1
    assert "prodcat_django/admin.css" in str(instance.media)
    assert LegacyProductAdmin.actions == ["mark_free"]  # the parent class is untouched
    with pytest.raises(TypeError, match="every ModelAdmin"):
        enable_suggestions(admin.ModelAdmin, Product)


@pytest.mark.parametrize("site", ["admin", "classy"])
def test_enable_suggestions_on_a_class_gives_what_the_mixin_gives(
    site, reviewer_client, admin_client, make_suggestion, categories
):
    """ "admin" uses the mixin; "classy" a third-party class given it by enable_suggestions()
    (with its own filter and explicit fields): the same list, filters, row Accept and panel."""
    sure = make_suggestion("watch", [("Watches", 0.99), ("Bags", 0.01)])
    unsure = make_suggestion("thing", [("Bags", 0.42), ("Shoes", 0.40)])
    listing = reverse(f"{site}:testapp_product_changelist")
    response = reviewer_client.get(listing)
    html = response.content.decode()
    assert "prodcat-confidence--high" in html and "prodcat-confidence--low" in html
    assert "prodcat_django/quick_review.js" in html and "prodcat_django/admin.css" in html
    quick = reverse(f"{site}:prodcat_django_categorysuggestion_quick", args=[sure.pk])
    assert f'formaction="{quick}"' in html  # the row's Accept, on this site
    filters = {type(f).__name__ for f in response.context["cl"].filter_specs}
    assert {"SuggestionStateFilter", "SuggestionScoreFilter"} <= filters
    low = reviewer_client.get(listing, {"prodcat_score": "low"}).context["cl"].result_list
    assert [str(p.pk) for p in low] == [unsure.object_id]

    change = reverse(f"{site}:testapp_product_change", args=[unsure.object_id])
    page = reviewer_client.get(change).content.decode()
    assert "data-prodcat-panel" in page and "prodcat_django/product_form.js" in page
    assert re.search(r'data-prodcat-use="\d+"[^>]*>Use Bags \(42%\)</button>', page)
    fragment = reverse(f"{site}:testapp_product_prodcat_suggestion", args=[unsure.object_id])
    assert "Bags 42%" in reviewer_client.get(fragment).content.decode()
    saved = reviewer_client.post(
        change,
        {
            "title": "thing",
            "category": categories["Bags"].pk,
            "price": "0",
            "_prodcat_used_suggestion": unsure.pk,
        },
    )
    assert saved.status_code == 302
    unsure.refresh_from_db()
    assert unsure.status == SuggestionStatus.ACCEPTED and unsure.category_pk == str(
        categories["Bags"].pk
    )

    accepted = reviewer_client.post(quick, {"decision": "accept", "next": listing}, follow=True)
    assert accepted.redirect_chain[-1][0] == listing
    assert Product.objects.get(pk=sure.object_id).category == categories["Watches"]
    add_page = admin_client.get(reverse(f"{site}:testapp_product_add")).content.decode()
    assert "A category will be suggested after you save the product" in add_page


@pytest.mark.django_db(transaction=True)
def test_broker_down_is_reported_and_nothing_is_lost(client, make_product, monkeypatch):
    """Committed for real (no test transaction), with a broker that refuses every task."""
    from django.contrib.auth.models import User

    from prodcat_django import services

    monkeypatch.setattr(services.dispatching, "dispatch", lambda ids: False)
    products = [make_product(f"offline {i}") for i in range(3)]
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    response = suggest(client, [p.pk for p in products])

    texts = " ".join(messages_of(response))
    assert "Queued 3 products in 1 task." in texts
    assert "3 suggestions could not be sent to the task broker" in texts
    pending = CategorySuggestion.objects.filter(
        batch=SuggestionBatch.objects.get(), status=SuggestionStatus.PENDING, is_current=True
    )
    assert pending.count() == 3  # waiting for dispatch_pending, not lost


def test_product_change_page_shows_and_links_the_suggestion(
    reviewer_client, admin_client, make_suggestion
):
    suggestion = make_suggestion("boots", [("Shoes", 0.82), ("Bags", 0.12)])
    review = reverse("admin:prodcat_django_categorysuggestion_change", args=[suggestion.pk])
    page = reviewer_client.get(
        reverse("admin:testapp_product_change", args=[suggestion.object_id])
    ).content.decode()
    assert "prodcat-status--ready" in page and ">Suggested<" in page
    assert re.search(r'data-prodcat-use="\d+"[^>]*>Use Shoes \(82%\)</button>', page)
    assert "Shoes 82%" in page and "Bags 12%" in page  # the chips
    assert f'href="{review}"' in page
    assert "data-prodcat-poll-url" not in page  # settled: nothing to poll
    add_page = admin_client.get(reverse("admin:testapp_product_add")).content.decode()
    assert "A category will be suggested after you save the product" in add_page
    listing = reviewer_client.get(reverse("admin:testapp_product_changelist")).content.decode()
    assert f'href="{review}"' in listing


def test_pending_panel_polls_and_the_fragment_follows_the_suggestion(
    reviewer_client, make_suggestion
):
    suggestion = make_suggestion("boots", [], status=SuggestionStatus.PENDING)
    change = reverse("admin:testapp_product_change", args=[suggestion.object_id])
    fragment = reverse("admin:testapp_product_prodcat_suggestion", args=[suggestion.object_id])
    page = reviewer_client.get(change).content.decode()
    assert f'data-prodcat-poll-url="{fragment}"' in page
    assert ">Waiting<" in page and "Matched category" not in page
    CategorySuggestion.objects.filter(pk=suggestion.pk).update(
        status=SuggestionStatus.READY,
        labels=[{"label": "Shoes", "score": 0.9}],
        label="Shoes",
        score=0.9,
    )
    html = reviewer_client.get(fragment).content.decode()
    assert "data-prodcat-poll-url" not in html and "Shoes 90%" in html


def test_saving_after_use_accepts_the_suggestion(reviewer_client, make_suggestion, categories):
    suggestion = make_suggestion("boots", [("Shoes", 0.82)])
    change = reverse("admin:testapp_product_change", args=[suggestion.object_id])
    response = reviewer_client.post(
        change,
        {
            "title": "boots",
            "category": categories["Shoes"].pk,
            "price": "0",
            "_prodcat_used_suggestion": suggestion.pk,
        },
    )
    assert response.status_code == 302
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.ACCEPTED
    assert suggestion.reviewed_by.username == "reviewer"
    assert Product.objects.get(pk=suggestion.object_id).category == categories["Shoes"]


def test_product_list_filters_on_suggestion_state_and_score(reviewer_client, make_suggestion):
    sure = make_suggestion("watch", [("Watches", 0.99)])
    unsure = make_suggestion("thing", [("Bags", 0.42)])
    waiting = make_suggestion("new", [], status=SuggestionStatus.PENDING)
    url = reverse("admin:testapp_product_changelist")

    def listed(**params: str) -> set[str]:
        response = reviewer_client.get(url, params)
        return {str(p.pk) for p in response.context["cl"].result_list}

    assert listed(prodcat_score="high") == {sure.object_id}
    assert listed(prodcat_score="low") == {unsure.object_id}
    assert listed(prodcat_state="waiting") == {waiting.object_id}
    assert listed(prodcat_state="review") == {sure.object_id, unsure.object_id}
    html = reviewer_client.get(url).content.decode()
    assert "prodcat-confidence--high" in html and "prodcat-confidence--low" in html


def test_row_accept_from_the_product_list(reviewer_client, make_suggestion, categories):
    suggestion = make_suggestion("boots", [("Shoes", 0.82)])
    listing = reverse("admin:testapp_product_changelist")
    quick = reverse("admin:prodcat_django_categorysuggestion_quick", args=[suggestion.pk])
    assert f'formaction="{quick}"' in reviewer_client.get(listing).content.decode()
    response = reviewer_client.post(quick, {"decision": "accept", "next": listing}, follow=True)
    assert response.redirect_chain[-1][0] == listing
    assert "Accepted: boots is filed under Shoes." in messages_of(response)
    assert Product.objects.get(pk=suggestion.object_id).category == categories["Shoes"]
    assert f'formaction="{quick}"' not in reviewer_client.get(listing).content.decode()


def test_clerk_gets_no_row_accept(clerk_client, make_suggestion):
    make_suggestion("boots", [("Shoes", 0.82)])
    html = clerk_client.get(reverse("admin:testapp_product_changelist")).content.decode()
    assert "formaction=" not in html


def test_suggest_categories_leaves_out_decided_products_unless_asked(
    reviewer_client, make_product, categories, django_capture_on_commit_callbacks
):
    from prodcat_django import services
    from prodcat_django.models import SuggestionDecision

    open_ = [make_product(f"open {i}") for i in range(3)]
    filed = make_product("filed by hand", category=categories["Bags"])
    decided = make_product("decided")
    row = CategorySuggestion.objects.current_for(decided).get()
    CategorySuggestion.objects.filter(pk=row.pk).update(status=SuggestionStatus.REJECTED)
    selected = [p.pk for p in (*open_, filed, decided)]

    page = suggest(reviewer_client, selected)  # asks first: some are decided
    html = page.content.decode()
    assert "Also ask again for 2 selected products" in html and 'name="redo_decided"' in html
    assert not SuggestionBatch.objects.exists()

    suggest(reviewer_client, selected, post="yes")
    batch = SuggestionBatch.objects.get()
    assert batch_suggestions(batch) == {str(p.pk) for p in open_}
    assert CategorySuggestion.objects.get(pk=row.pk).status == SuggestionStatus.REJECTED
    assert not SuggestionDecision.objects.exists() and services

    suggest(reviewer_client, selected, post="yes", redo_decided="1")
    latest = SuggestionBatch.objects.order_by("-pk").first()
    assert batch_suggestions(latest) == {str(p.pk) for p in (*open_, filed, decided)}


def test_the_action_works_on_an_admin_that_prefetches(reviewer_client, products):
    # Oscar's ProductAdmin uses prefetch_related(): QuerySet.iterator() refused to run on it
    # ("chunk_size must be provided"), after an empty batch row had been created.
    response = suggest(reviewer_client, [p.pk for p in products[:3]], site="prefetch")
    assert response.status_code == 200
    assert "Queued 3 products" in " ".join(messages_of(response))
    response = suggest(
        reviewer_client, [products[0].pk], site="prefetch", select_across="1"
    )  # "select all"
    assert "Queued 12 products" in " ".join(messages_of(response))
    assert sorted(SuggestionBatch.objects.values_list("total", flat=True)) == [3, 12]


def test_a_failing_selection_leaves_no_empty_batch(products):
    from prodcat_django import services

    broken = Product.objects.extra(where=["no_such_column = 1"])  # the query fails
    with pytest.raises(Exception, match="no_such_column"):
        services.request_suggestions(broken)
    assert not SuggestionBatch.objects.exists()
