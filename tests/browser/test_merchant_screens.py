"""The merchant's screens in a real browser, each on a 1280 px desktop (light theme) and a
390 px phone (dark theme): the suggestion in the product form, the product list, the review
queue, accept and next, the progress page and the health warning. Every screen also goes
through axe-core (no serious or critical violation) and leaves a screenshot artifact.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.browser.conftest import assert_accessible, shoot
from tests.shop_data import png_bytes
from tests.testapp.models import Product

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: WCAG AA for normal text.
AA_CONTRAST = 4.5

# The contrast of an element's text against the first opaque background behind it, as the
# browser computed the colours (sRGB relative luminance, WCAG 2.x).
CONTRAST_JS = """
(element) => {
    const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
        const f = (v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let bg = null;
    for (let node = element; node; node = node.parentElement) {
        const c = parse(getComputedStyle(node).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.99)) { bg = c.slice(0, 3); break; }
    }
    bg = bg || parse(getComputedStyle(document.body).backgroundColor).slice(0, 3);
    const fg = parse(getComputedStyle(element).color).slice(0, 3);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
}
"""


def log_in(page: Any, base_url: str, next_url: str = "/admin/") -> None:
    if not User.objects.filter(username="merchant").exists():
        User.objects.create_superuser("merchant", password="a long secret phrase")
    page.goto(f"{base_url}/admin/login/?next={next_url}")
    page.fill("#id_username", "merchant")
    page.fill("#id_password", "a long secret phrase")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}{next_url}")


def assert_fits(page: Any, selector: str) -> None:
    """The element is laid out inside the viewport's width (not pushed off to the right)."""
    box = page.locator(selector).first.bounding_box()
    width = page.viewport_size["width"]
    assert box is not None and box["width"] > 0
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (selector, box, width)


def assert_no_horizontal_scroll(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px"


def assert_no_hidden_columns(page: Any) -> None:
    """The list's table is not wider than its box (the admin would scroll it sideways)."""
    hidden = page.evaluate(
        "(() => { const r = document.querySelector('#changelist .results');"
        " return r.scrollWidth - r.clientWidth; })()"
    )
    assert hidden <= 1, f"{hidden}px of the list are out of sight"


def assert_contrast(page: Any, selector: str) -> None:
    for element in page.locator(selector).all():
        ratio = element.evaluate(CONTRAST_JS)
        assert ratio >= AA_CONTRAST, (selector, element.inner_text(), round(ratio, 2))


def test_use_the_suggestion_from_the_product_form(
    screen: Any, live_server: Any, model_checkpoint: Path, make_suggestion, categories
):
    suggestion = make_suggestion(
        "Leather ankle boots",
        [("Shoes", 0.98), ("Bags", 0.01), ("Watches", 0.01)],
        image=png_bytes("saddlebrown", (96, 96)),
    )
    change = f"/admin/testapp/product/{suggestion.object_id}/change/"
    log_in(screen, live_server.url, change)
    panel = screen.locator("[data-prodcat-panel]")
    # product_form.js moved the panel beside the category field.
    assert panel.evaluate("p => !!p.closest('.form-row.field-category')")
    use = panel.get_by_role("button", name="Use Shoes (98%)")
    chips = panel.locator(".prodcat-chip").all_inner_texts()
    assert chips == ["Shoes 98%", "Bags 1%", "Watches 1%"]
    assert_fits(screen, "[data-prodcat-panel]")
    assert_contrast(screen, ".prodcat-status, .prodcat-chip")
    shoot(screen, "product-change")
    assert_accessible(screen, "product change form")

    use.click()
    assert screen.locator("select[name=category]").input_value() == str(categories["Shoes"].pk)
    assert panel.locator(".prodcat-panel__done").is_visible()
    screen.click("input[name=_save]")
    screen.wait_for_selector(".messagelist .success")
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.ACCEPTED
    assert suggestion.reviewed_by.username == "merchant"
    assert Product.objects.get(pk=suggestion.object_id).category == categories["Shoes"]

    screen.goto(f"{live_server.url}/admin/testapp/product/add/")
    assert "A category will be suggested after you save" in screen.inner_text("#content")
    shoot(screen, "product-add")
    assert_accessible(screen, "product add form")


def test_a_pending_suggestion_turns_ready_without_reload(
    screen: Any, live_server: Any, model_checkpoint: Path, make_suggestion
):
    suggestion = make_suggestion("Canvas tote bag", [], status=SuggestionStatus.PENDING)
    change = f"/admin/testapp/product/{suggestion.object_id}/change/"
    log_in(screen, live_server.url, change)
    panel = screen.locator("[data-prodcat-panel]")
    assert "Waiting" in panel.inner_text()
    screen.evaluate("window.prodcatMarker = 'same page'")
    shoot(screen, "product-change-pending")

    # What the worker writes when it is done.
    CategorySuggestion.objects.filter(pk=suggestion.pk).update(
        status=SuggestionStatus.READY,
        labels=[{"label": "Bags", "score": 0.93}, {"label": "Shoes", "score": 0.05}],
        label="Bags",
        score=0.93,
        category_pk=str(suggestion.category_pk or ""),
    )
    screen.wait_for_selector("[data-prodcat-panel] .prodcat-chip", timeout=10_000)
    assert "Suggested" in screen.inner_text("[data-prodcat-panel]")
    assert screen.evaluate("window.prodcatMarker") == "same page"  # no reload happened
    assert screen.locator("[data-prodcat-poll-url]").count() == 0  # polling stopped


def test_product_list_and_per_row_accept(
    screen: Any, live_server: Any, model_checkpoint: Path, make_suggestion, categories
):
    sure = make_suggestion("Steel diver watch", [("Watches", 0.99), ("Bags", 0.01)])
    unsure = make_suggestion("Odd thing", [("Bags", 0.42), ("Shoes", 0.40)])
    log_in(screen, live_server.url, "/admin/testapp/product/")
    sure_row = screen.locator("#result_list tbody tr", has_text="Steel diver watch")
    unsure_row = screen.locator("#result_list tbody tr", has_text="Odd thing")
    assert_fits(screen, "#result_list tbody tr .prodcat-cell")
    assert_no_horizontal_scroll(screen)
    assert_no_hidden_columns(screen)
    high = sure_row.locator(".prodcat-confidence")
    low = unsure_row.locator(".prodcat-confidence")
    assert "confidence--high" in high.get_attribute("class")
    assert "confidence--low" in low.get_attribute("class")
    # A 99% and a 42% suggestion differ in more than the number: fill and border style.
    assert high.evaluate("e => getComputedStyle(e).backgroundColor") != low.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert low.evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
    assert_contrast(screen, ".prodcat-status, .prodcat-confidence")
    shoot(screen, "product-list")
    assert_accessible(screen, "product list")

    sure_row.get_by_role("button", name=re.compile("Accept Watches")).click()
    screen.wait_for_selector("#prodcat-announce:has-text('Accepted')")
    assert "Steel diver watch is filed under Watches" in screen.inner_text("#prodcat-announce")
    assert Product.objects.get(pk=sure.object_id).category == categories["Watches"]
    sure.refresh_from_db()
    assert sure.status == SuggestionStatus.ACCEPTED

    screen.goto(f"{live_server.url}/admin/testapp/product/?prodcat_score=low")
    assert screen.locator("#result_list tbody tr").count() == 1
    assert "Odd thing" in screen.inner_text("#result_list")
    unsure.refresh_from_db()
    assert unsure.status == SuggestionStatus.READY


def test_per_row_accept_in_the_review_list(
    screen: Any, live_server: Any, model_checkpoint: Path, make_suggestion, categories
):
    boots = make_suggestion(
        "Leather ankle boots",
        [("Shoes", 0.87), ("Bags", 0.09), ("Watches", 0.04)],
        image=png_bytes("saddlebrown", (96, 96)),
    )
    tote = make_suggestion("Canvas tote", [("Shoes", 0.55), ("Bags", 0.40)])
    make_suggestion("Queued", [], status=SuggestionStatus.PENDING)
    log_in(screen, live_server.url, "/admin/prodcat_django/categorysuggestion/")
    rows = screen.locator("#result_list tbody tr")
    assert rows.count() == 2  # what needs review; the waiting one is one click away
    assert_fits(screen, "#result_list tbody tr .prodcat-decide")
    assert_no_horizontal_scroll(screen)
    assert_no_hidden_columns(screen)
    assert_contrast(screen, ".prodcat-status")
    shoot(screen, "review-list")
    assert_accessible(screen, "review list")

    row = screen.locator("#result_list tbody tr", has_text="Leather ankle boots")
    row.get_by_role("button", name="Accept Shoes").click()
    screen.wait_for_selector("#prodcat-announce:has-text('Accepted')")
    assert row.locator(".prodcat-status--accepted").count() == 1
    assert row.get_by_role("button", name="Accept Shoes").count() == 0
    boots.refresh_from_db()
    assert boots.status == SuggestionStatus.ACCEPTED

    other = screen.locator("#result_list tbody tr", has_text="Canvas tote")
    other.locator("summary").click()
    other.locator("select").select_option(label="Bags")
    other.get_by_role("button", name="File").click()
    screen.wait_for_selector("#prodcat-announce:has-text('Filed Canvas tote under Bags')")
    assert Product.objects.get(pk=tote.object_id).category == categories["Bags"]


def test_accept_and_next_from_the_keyboard(
    screen: Any, live_server: Any, model_checkpoint: Path, make_suggestion, categories
):
    older = make_suggestion("Older boots", [("Shoes", 0.8)], image=png_bytes("olive", (64, 64)))
    newer = make_suggestion("Newer tote", [("Bags", 0.9)], image=png_bytes("teal", (64, 64)))
    detail = f"/admin/prodcat_django/categorysuggestion/{newer.pk}/change/"
    log_in(screen, live_server.url, detail)
    screen.wait_for_selector(".prodcat-heatmap__grid")
    shoot(screen, "review-detail")
    assert_accessible(screen, "review detail")

    screen.keyboard.press("a")  # accept and next
    screen.wait_for_url(f"**/categorysuggestion/{older.pk}/change/")
    newer.refresh_from_db()
    assert newer.status == SuggestionStatus.ACCEPTED
    assert Product.objects.get(pk=newer.object_id).category == categories["Bags"]

    screen.goto(f"{live_server.url}{detail}")
    assert screen.get_by_role("button", name=re.compile("Accept")).count() == 0
    assert "decided already" in screen.inner_text("#prodcat-review")

    screen.goto(
        f"{live_server.url}/admin/prodcat_django/categorysuggestion/{older.pk}/explanation/"
    )
    assert screen.locator(".breadcrumbs").count() == 1
    shoot(screen, "explanation-page")
    assert_accessible(screen, "explanation page")


def test_bulk_progress_reaches_100_percent(
    screen: Any, live_server: Any, model_checkpoint: Path, make_product, settings
):
    settings.PRODCAT = {**settings.PRODCAT, "BULK_CONFIRM_THRESHOLD": 50, "TASK_BATCH_SIZE": 2}
    for i in range(5):
        make_product(f"bulk item {i}", image=png_bytes("teal"))
    log_in(screen, live_server.url, "/admin/testapp/product/")
    screen.check("#action-toggle")
    screen.select_option("select[name=action]", "suggest_categories")
    screen.click("button[name=index]")
    screen.wait_for_selector(".messagelist .success")
    screen.click(".messagelist a")  # Watch progress
    screen.wait_for_selector("text=Finished: 5 of 5 suggestions settled.")
    bar = screen.locator(".prodcat-progress__bar")
    assert bar.get_attribute("aria-valuenow") == bar.get_attribute("aria-valuemax") == "5"
    done = bar.locator(".done").evaluate("e => e.getBoundingClientRect().width")
    track = bar.evaluate("e => e.getBoundingClientRect().width")
    assert done == pytest.approx(track, abs=1.5)
    assert_no_horizontal_scroll(screen)
    shoot(screen, "batch-progress")
    assert_accessible(screen, "batch progress")


def test_health_warning_when_no_worker_runs(
    screen: Any, live_server: Any, model_checkpoint: Path, make_suggestion, settings
):
    from prodcat_django.services import health
    from tests.celery_app import app

    settings.PRODCAT = {**settings.PRODCAT, "DISPATCH_LEASE": 0}
    eager = app.conf.task_always_eager
    # Tasks go through a broker (memory://, nothing consumes it): a worker is expected, and
    # this process runs no task itself (an eager run would write a health row).
    app.conf.task_always_eager = False
    try:
        stuck = make_suggestion("Never classified", [], status=SuggestionStatus.PENDING)
        CategorySuggestion.objects.filter(pk=stuck.pk).update(dispatched_at=None)
        make_suggestion("Waiting for you", [("Shoes", 0.7)])
        log_in(screen, live_server.url)
        # No worker has ever reported on the queue.
        for url, name in (
            ("/admin/", "index"),
            ("/admin/prodcat_django/categorysuggestion/", "review-list-warning"),
            (f"/admin/testapp/product/{stuck.object_id}/change/", "product-change-warning"),
        ):
            screen.goto(f"{live_server.url}{url}")
            warning = screen.locator(".prodcat-health").first
            text = warning.inner_text()
            assert "No worker is taking category suggestions" in text
            assert "1 suggestion is waiting." in text
            assert "celery -A <your project> worker -Q prodcat" in text
            assert_contrast(screen, ".prodcat-health p")
            assert_no_horizontal_scroll(screen)
            shoot(screen, name)
            assert_accessible(screen, name)
        # A worker reports in; the suggestion nobody took still warns, in other words.
        health.record_heartbeat("w1@shop")
        screen.goto(f"{live_server.url}/admin/prodcat_django/categorysuggestion/")
        text = screen.locator(".prodcat-health").first.inner_text()
        assert "no worker has taken" in text and "No worker is taking" not in text
    finally:
        app.conf.task_always_eager = eager
    screen.goto(f"{live_server.url}/admin/")
    assert "1 suggestion waits for review." in screen.inner_text(".prodcat-summary")


def test_try_it_with_two_products_and_a_bad_file(
    screen: Any, live_server: Any, model_checkpoint: Path, tmp_path: Path
):
    boots = tmp_path / "leather-ankle-boots.png"
    boots.write_bytes(png_bytes("saddlebrown", (120, 120)))
    watch = tmp_path / "steel-diver-watch.png"
    watch.write_bytes(png_bytes("navy", (120, 120)))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    fake = tmp_path / "broken.png"
    fake.write_bytes(b"\x89PNG but not really an image")
    log_in(screen, live_server.url, "/admin/")
    screen.get_by_role("link", name="Try the model on a few photos").click()
    screen.wait_for_url("**/categorysuggestion/try/")
    before = CategorySuggestion.objects.count()

    # Several photos at once, as a merchant drops them: each becomes a row titled after it.
    screen.set_input_files("#prodcat-drop-input", [str(boots), str(watch), str(notes), str(fake)])
    rows = screen.locator("[data-prodcat-try-row]")
    assert rows.count() == 4
    titles = [rows.nth(i).locator("input[name=title]").input_value() for i in range(4)]
    assert titles == ["leather ankle boots", "steel diver watch", "notes", "broken"]
    screen.get_by_role("button", name="Suggest categories").click()
    for i in (0, 1):
        rows.nth(i).locator(".prodcat-scores li").first.wait_for()
        assert rows.nth(i).locator(".prodcat-scores li").count() == 3
        assert rows.nth(i).locator(".prodcat-heatmap__cell").count() == 49
        assert rows.nth(i).locator(".prodcat-token").count() == 3
    notes_error = rows.nth(2).locator(".errornote")
    assert "“notes.txt” is not an image" in notes_error.inner_text()
    rows.nth(3).locator(".errornote").wait_for()
    assert "image" in rows.nth(3).locator(".errornote").inner_text().lower()
    assert CategorySuggestion.objects.count() == before  # nothing saved
    assert_no_horizontal_scroll(screen)
    shoot(screen, "try-it")
    assert_accessible(screen, "try it")


def test_the_records_screens_pass_axe(
    screen: Any, live_server: Any, model_checkpoint: Path, make_suggestion
):
    """The batches and the decision trail, on both screens: no serious or critical axe
    finding."""
    from prodcat_django import services

    suggestion = make_suggestion("Leather ankle boots", [("Shoes", 0.9)])
    log_in(screen, live_server.url)
    services.accept(suggestion, user=User.objects.get(username="merchant"))
    services.request_suggestions(Product.objects.all())
    for url, name in (
        ("/admin/prodcat_django/suggestionbatch/", "batch-list"),
        ("/admin/prodcat_django/suggestiondecision/", "decision-list"),
    ):
        screen.goto(f"{live_server.url}{url}")
        assert screen.locator("#result_list tbody tr").count() == 1
        shoot(screen, name)
        assert_accessible(screen, name)


def test_a_class_given_suggestions_works_as_the_mixin(
    page: Any, live_server: Any, model_checkpoint: Path, make_suggestion, categories
):
    """The "classy" site's product admin is a third-party class given prodcat by
    ``enable_suggestions(TheClass, Product)``: the panel sits beside its category field, "Use"
    fills it, and a row's Accept decides without leaving the list."""
    boots = make_suggestion("Leather ankle boots", [("Shoes", 0.91), ("Bags", 0.05)])
    watch = make_suggestion("Steel diver watch", [("Watches", 0.97)])
    change = f"/classy/testapp/product/{boots.object_id}/change/"
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}{change}")
    panel = page.locator("[data-prodcat-panel]")
    assert panel.evaluate("p => !!p.closest('.form-row.field-category')")
    panel.get_by_role("button", name="Use Shoes (91%)").click()
    assert page.locator("select[name=category]").input_value() == str(categories["Shoes"].pk)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    boots.refresh_from_db()
    assert boots.status == SuggestionStatus.ACCEPTED

    page.goto(f"{live_server.url}/classy/testapp/product/")
    row = page.locator("#result_list tbody tr", has_text="Steel diver watch")
    row.get_by_role("button", name=re.compile("Accept Watches")).click()
    page.wait_for_selector("#prodcat-announce:has-text('Accepted')")
    assert Product.objects.get(pk=watch.object_id).category == categories["Watches"]


def test_the_model_pages_pass_axe(
    screen: Any, live_server: Any, model_checkpoint: Path, categories, settings, tmp_path: Path
):
    """The model versions (list and one version beside the active one) and the label
    mappings, on both screens: no serious or critical axe finding, nothing scrolled sideways."""
    from django.contrib.contenttypes.models import ContentType

    from prodcat_django.ml.testing import build_random_checkpoint
    from prodcat_django.models import LabelMapping
    from prodcat_django.training import store
    from prodcat_django.training.labels import label_map_for

    settings.PRODCAT = {**settings.PRODCAT, "MODEL_CACHE_DIR": str(tmp_path / "model-cache")}
    store.forget_local_copies()
    cats = sorted(categories.values(), key=lambda c: str(c.pk))
    path = build_random_checkpoint(
        tmp_path / "ckpt", [str(c.pk) for c in cats], name="shop", version="2", seed=1
    )
    # What prodcat_train records (trainer.evaluate_version, compare_on_held_out); the page
    # only renders it.
    side = {"n": 48, "auto_accept_coverage": 0.5}
    row = store.add_version(
        path,
        label_map=label_map_for(cats),
        product_model="testapp.Product",
        metrics={
            "test": {
                "full": {
                    "accuracy": 0.9167,
                    "auto_accept": {"precision": 0.9815, "coverage": 0.5625},
                },
                "title_only": {"accuracy": 0.8542},
                "image_only": {"accuracy": 0.625},
            },
            "confusion_pairs": [{"true": "Shoes", "predicted": "Bags", "n": 3}],
            "dataset": {"left_out": [{"name": "Home Decor", "count": 3}]},
        },
        comparison={
            "passed": False,
            "reasons": ["accuracy 91.67% is below the active version's 93.75%"],
            "candidate": {
                "name": "shop",
                "version": "2",
                "accuracy": 0.9167,
                "auto_accept_precision": 0.9815,
                **side,
            },
            "baseline": {
                "name": "tiny",
                "version": "0.0.1",
                "accuracy": 0.9375,
                "auto_accept_precision": 0.9630,
                **side,
            },
        },
        dataset_size=240,
        note="nightly retrain",
    )
    store.ensure_builtin()
    category_type = ContentType.objects.get_for_model(cats[0])
    for label, category in (("Shoes", categories["Shoes"]), ("Bags", categories["Bags"])):
        LabelMapping.objects.create(
            model_name="tiny", label=label, category_type=category_type, category_pk=category.pk
        )
    log_in(screen, live_server.url)
    for url, name in (
        ("/admin/prodcat_django/modelversion/", "model-versions"),
        (f"/admin/prodcat_django/modelversion/{row.pk}/change/", "model-version-detail"),
        ("/admin/prodcat_django/labelmapping/", "label-mappings"),
    ):
        screen.goto(f"{live_server.url}{url}")
        assert screen.locator("#content h1").count() == 1
        assert_no_horizontal_scroll(screen)
        shoot(screen, name)
        assert_accessible(screen, name)

    # The label's category is picked by name from the shop's categories, not typed as a key.
    picker = screen.get_by_label("Category for the label Bags")
    assert picker.evaluate("e => e.tagName") == "SELECT"
    picker.select_option(label="Watches")
    screen.get_by_role("button", name="Save").click()
    screen.wait_for_selector(".messagelist .success")
    mapping = LabelMapping.objects.get(label="Bags")
    assert mapping.category_pk == str(categories["Watches"].pk)
    store.forget_local_copies()
