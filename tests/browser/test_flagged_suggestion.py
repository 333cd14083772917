"""The flagged-suggestion screen (issue 10) in headless Chromium: "may not fit any of your
categories", "File under…" as the main action, filing it; 1280 px light and 390 px dark, axe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prodcat_django.index import to_bytes
from prodcat_django.models import NeighbourVector, SuggestionStatus
from tests.browser.conftest import assert_accessible, shoot
from tests.browser.test_merchant_screens import assert_no_horizontal_scroll, log_in
from tests.shop_data import png_bytes
from tests.testapp.models import Product

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_file_a_flagged_suggestion_under_a_category(
    screen: Any, live_server: Any, model_checkpoint: Path, make_suggestion, categories
):
    flagged = make_suggestion(
        "Temple at dusk, summer collection 2026",
        [("Watches", 0.84), ("Bags", 0.1), ("Shoes", 0.06)],
        image=png_bytes("sienna", (64, 64)),
        out_of_taxonomy=True,
        ood_score=0.98,
        ood_threshold=0.93,
        ood_reason="far from every category",
        embedding=to_bytes(np.linspace(-1, 1, 16, dtype=np.float32)),
        embedding_id="browser-test",
    )
    detail = f"/admin/prodcat_django/categorysuggestion/{flagged.pk}/change/"
    log_in(screen, live_server.url, detail)

    flag = screen.locator("#prodcat-flag")
    assert "This product may not fit any of your categories." in flag.inner_text()
    assert "far from every category" in flag.inner_text()
    # The main action is filing it; Accept is there, but not the default button.
    main = flag.get_by_role("button", name="File under this category")
    assert "default" in (main.get_attribute("class") or "")
    assert screen.get_by_role("button", name="Accept Watches anyway").count() == 1
    assert screen.get_by_role("button", name="Accept and next A").count() == 0
    assert flag.get_by_role("link", name="Create a category for it").count() == 1
    assert_no_horizontal_scroll(screen)
    shoot(screen, "review-detail-flagged")
    assert_accessible(screen, "flagged review detail")

    # File it: the category's name typed into the autocomplete, then the main button.
    flag.get_by_label("File under…").fill("Home Decor")
    main.click()
    screen.wait_for_url(f"**{detail}")
    assert "Suggestion rejected." in screen.inner_text("ul.messagelist")
    flagged.refresh_from_db()
    assert flagged.status == SuggestionStatus.REJECTED
    assert Product.objects.get(pk=flagged.object_id).category == categories["Home Decor"]
    row = NeighbourVector.objects.get(object_id=flagged.object_id, source="merchant")
    assert row.category_pk == str(categories["Home Decor"].pk)

    # The review list's filter finds flagged ones; this one is decided now.
    screen.goto(f"{live_server.url}/admin/prodcat_django/categorysuggestion/?fit=no&needs=all")
    assert "Temple at dusk" in screen.inner_text("#changelist")
    assert_accessible(screen, "review list, may not fit")
