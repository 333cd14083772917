"""Log in to the admin in a real browser, review suggestions, accept one through the action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.shop_data import png_bytes
from tests.testapp.models import Product

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page: Any, base_url: str) -> None:
    User.objects.create_superuser("merchant", password="a long secret phrase")
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", "merchant")
    page.fill("#id_password", "a long secret phrase")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")


def test_accept_a_suggestion_in_the_browser(
    page: Any, live_server: Any, model_checkpoint: Path, make_suggestion, categories, tmp_path
):
    boots = make_suggestion(
        "Leather ankle boots",
        [("Shoes", 0.87), ("Bags", 0.09), ("Watches", 0.04)],
        image=png_bytes("saddlebrown", (96, 96)),
    )
    make_suggestion(
        "Steel diver watch",
        [("Watches", 0.95), ("Home Decor", 0.03), ("Bags", 0.02)],
        image=png_bytes("navy", (96, 96)),
    )
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/prodcat_django/categorysuggestion/")
    row = page.locator("#result_list tbody tr", has_text="Leather ankle boots")
    bars = row.locator(".prodcat-scores li")
    assert bars.count() == 3
    assert bars.nth(0).inner_text().split() == ["Shoes", "87%"]
    fill = row.locator(".prodcat-bar__fill").first
    width = fill.evaluate("e => e.getBoundingClientRect().width")
    track = fill.evaluate("e => e.parentElement.getBoundingClientRect().width")
    assert width == pytest.approx(0.87 * track, abs=1.5)  # the bar is drawn to scale
    thumb = row.locator("img.prodcat-thumb")
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 96  # served, decoded
    page.screenshot(path=str(tmp_path / "review-list.png"), full_page=True)

    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "accept_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    assert "Accepted 1 suggestion." in page.inner_text(".messagelist")
    page.screenshot(path=str(tmp_path / "after-accept.png"), full_page=True)

    product = Product.objects.get(pk=boots.object_id)
    assert product.category == categories["Shoes"]
    boots.refresh_from_db()
    assert boots.status == SuggestionStatus.ACCEPTED
    assert boots.reviewed_by.username == "merchant"
    # Decided, it left the default view (what needs review); "Everything" still lists it.
    assert page.locator("#result_list tbody tr", has_text="Leather ankle boots").count() == 0
    page.goto(f"{live_server.url}/admin/prodcat_django/categorysuggestion/?needs=all")
    decided = page.locator("#result_list tbody tr", has_text="Leather ankle boots")
    assert "by merchant" in decided.inner_text()


def test_change_page_loads_the_explanation(
    page: Any, live_server: Any, model_checkpoint: Path, make_suggestion, tmp_path
):
    suggestion = make_suggestion("Canvas tote bag", image=png_bytes("olive", (120, 120)))
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/prodcat_django/categorysuggestion/{suggestion.pk}/change/")
    # explanation.js fetches the fragment after the page loaded: 49 heat-map cells appear.
    page.wait_for_selector(".prodcat-heatmap__grid")
    assert page.locator(".prodcat-heatmap__cell").count() == 49
    words = page.locator(".prodcat-token").all_inner_texts()
    assert [w.lower() for w in words] == ["canvas", "tote", "bag"]
    page.screenshot(path=str(tmp_path / "explanation.png"), full_page=True)
    assert CategorySuggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.READY


def test_bulk_suggest_select_all_and_watch_progress(
    page: Any, live_server: Any, model_checkpoint: Path, make_product, settings, tmp_path
):
    settings.PRODCAT = {**settings.PRODCAT, "BULK_CONFIRM_THRESHOLD": 5, "BULK_CHUNK_SIZE": 4}
    from tests.admin.site import ProductAdmin

    products = [make_product(f"bulk item {i:02d}", image=png_bytes("teal")) for i in range(9)]
    log_in(page, live_server.url)
    ProductAdmin.list_per_page = 4  # "select all 9" must reach past the visible page
    try:
        page.goto(f"{live_server.url}/admin/testapp/product/")
        page.check("#action-toggle")
        page.click(".actions .question a")  # "Select all 9 products"
        page.select_option("select[name=action]", "suggest_categories")
        page.click("button[name=index]")
        # Above the threshold: the confirmation page first.
        page.wait_for_selector("text=Queue category suggestions for 9 products?")
        page.screenshot(path=str(tmp_path / "confirm.png"), full_page=True)
        page.click("input[type=submit].default")
        page.wait_for_selector(".messagelist .success")
        assert "Queued 9 products in 3 tasks." in page.inner_text(".messagelist")
        page.click(".messagelist a")  # Watch progress
        # Eager test tasks finished in the request: the page says so and stops refreshing.
        page.wait_for_selector("text=Finished: 9 of 9 suggestions settled.")
        assert page.locator('meta[http-equiv="refresh"]').count() == 0
        page.screenshot(path=str(tmp_path / "progress.png"), full_page=True)
    finally:
        ProductAdmin.list_per_page = 100
    settled = CategorySuggestion.objects.filter(
        object_id__in=[str(p.pk) for p in products], is_current=True, batch__isnull=False
    )
    assert settled.count() == 9
    assert set(settled.values_list("status", flat=True)) == {SuggestionStatus.READY}
