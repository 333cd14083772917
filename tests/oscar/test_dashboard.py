"""Oscar's dashboard: the product form (with its image formset) saved through the real view,
the suggestion shown on it, the review page and its menu entry, and who may use them."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape
from oscar.core.loading import get_model

from prodcat_django.fingerprint import product_fingerprint
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.oscar.conftest import make_staff
from tests.oscar.forms import PRODUCT_FORM, create_through_dashboard, form_data
from tests.shop_data import png_bytes

Product = get_model("catalogue", "Product")

pytestmark = pytest.mark.django_db

LIST_URL = "prodcat_oscar:prodcat-suggestion-list"


def rows(product):
    return list(CategorySuggestion.objects.for_product(product).order_by("pk"))


def test_a_dashboard_save_of_product_and_image_makes_one_suggestion(
    client,
    reviewer,
    product_class,
    oscar_categories,
    photo,
    model_checkpoint,
    django_capture_on_commit_callbacks,
):
    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        product = create_through_dashboard(
            client, product_class, oscar_categories["Uncategorised"], "Leather ankle boots", photo
        )
    assert product.images.count() == 1
    [suggestion] = rows(product)  # not a title-only one followed by another
    assert suggestion.fingerprint == product_fingerprint(product)  # the image is an input
    assert suggestion.status == SuggestionStatus.READY


def test_an_invalid_dashboard_save_leaves_no_suggestion(
    client, reviewer, product_class, model_checkpoint, django_capture_on_commit_callbacks
):
    # No category: Oscar deletes the product it saved first, and re-shows the form.
    client.force_login(reviewer)
    url = reverse(
        "dashboard:catalogue-product-create", kwargs={"product_class_slug": product_class.slug}
    )
    data = form_data(client.get(url).content.decode(), PRODUCT_FORM)
    data["title"] = "Boots without a category"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 200
    assert not Product.objects.filter(title="Boots without a category").exists()
    assert not CategorySuggestion.objects.current().exists()


def test_the_product_form_shows_the_suggestion_and_accepts_it(
    client,
    reviewer,
    make_oscar_product,
    oscar_categories,
    model_checkpoint,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_oscar_product("Leather ankle boots", images=(png_bytes(),))
    suggestion = CategorySuggestion.objects.current_for(product).get()
    label = {str(c.pk): c.full_name for c in oscar_categories.values()}[suggestion.category_pk]
    client.force_login(reviewer)
    url = reverse("dashboard:catalogue-product", kwargs={"pk": product.pk})
    page = client.get(url).content.decode()
    assert "Suggested category" in page and escape(label) in page
    review = form_data(page, "prodcat_review_form")
    review["action"] = "accept"
    response = client.post(
        reverse("prodcat_oscar:prodcat-suggestion-review", args=[suggestion.pk]), review
    )
    assert response.status_code == 302 and response["Location"] == url
    assert [c.full_name for c in product.categories.all()] == [label]


def test_the_review_page_lists_and_accepts(
    client,
    reviewer,
    make_oscar_product,
    oscar_categories,
    model_checkpoint,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_oscar_product("Leather ankle boots", images=(png_bytes(),))
    suggestion = CategorySuggestion.objects.current_for(product).get()
    client.force_login(reviewer)
    page = client.get(reverse(LIST_URL))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Leather ankle boots" in html and "Uncategorised" in html
    response = client.post(
        reverse("prodcat_oscar:prodcat-suggestion-review", args=[suggestion.pk]),
        {"action": "reject", "category": "Home > Home Decor"},
    )
    assert response.status_code == 302
    assert [c.full_name for c in product.categories.all()] == ["Home > Home Decor"]
    follow = client.get(response["Location"]).content.decode()
    assert "Filed under Home &gt; Home Decor" in follow


def test_an_unknown_category_is_a_clear_message_and_changes_nothing(
    client, reviewer, make_oscar_product, model_checkpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_oscar_product("Leather ankle boots")
    suggestion = CategorySuggestion.objects.current_for(product).get()
    client.force_login(reviewer)
    response = client.post(
        reverse("prodcat_oscar:prodcat-suggestion-review", args=[suggestion.pk]),
        {"action": "reject", "category": "Garden > Gnomes"},
        follow=True,
    )
    assert "Garden &gt; Gnomes" in response.content.decode()
    assert [c.name for c in product.categories.all()] == ["Uncategorised"]
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.READY


# --------------------------------------------------------------------------- permissions


def test_staff_without_the_review_permission_see_but_cannot_decide(
    client, viewer, make_oscar_product, model_checkpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        product = make_oscar_product("Leather ankle boots")
    suggestion = CategorySuggestion.objects.current_for(product).get()
    client.force_login(viewer)
    page = client.get(reverse(LIST_URL)).content.decode()
    assert "Leather ankle boots" in page and 'value="accept"' not in page
    response = client.post(
        reverse("prodcat_oscar:prodcat-suggestion-review", args=[suggestion.pk]),
        {"action": "accept"},
    )
    assert response.status_code == 403
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.READY


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 302), ("customer", 403), ("staff_without_permission", 403)],
)
def test_the_review_page_is_closed_to_others(client, who, expected):
    # As in Oscar's own dashboard: the login page for anonymous users, 403 for the others.
    if who == "customer":
        client.force_login(make_staff("customer", is_staff=False))
    elif who == "staff_without_permission":
        client.force_login(make_staff("clerk", "catalogue.view_product"))
    response = client.get(reverse(LIST_URL))
    assert response.status_code == expected
    if expected == 302:
        assert response["Location"].startswith(reverse("dashboard:login"))


def test_the_menu_entry_follows_the_permissions(reviewer, viewer):
    from oscar.apps.dashboard.menu import get_nodes

    def entries(user):
        return [child.url_name for node in get_nodes(user) for child in node.children]

    clerk = make_staff("clerk", "catalogue.view_product")
    assert LIST_URL in entries(reviewer)
    assert LIST_URL in entries(viewer)
    assert LIST_URL not in entries(clerk)
    # Placed under Catalogue, right after Oscar's "Products".
    products = entries(reviewer).index("dashboard:catalogue-product-list")
    assert entries(reviewer)[products + 1] == LIST_URL


def test_the_menu_shows_on_oscars_dashboard(client, reviewer):
    client.force_login(reviewer)
    page = client.get(reverse("dashboard:index")).content.decode()
    assert reverse(LIST_URL) in page


def test_the_review_page_makes_the_same_queries_for_any_number_of_rows(
    client, reviewer, make_oscar_product, model_checkpoint, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(LIST_URL)).status_code == 200
        return len(captured)

    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(2):
            make_oscar_product(f"Boots {n}", categories=("Uncategorised", "Bags"))
    two = queries()
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(2, 8):
            make_oscar_product(f"Boots {n}", categories=("Uncategorised", "Bags"))
    assert CategorySuggestion.objects.current().filter(status=SuggestionStatus.READY).count() == 8
    assert queries() == two


def test_the_other_category_box_searches_as_you_type(
    client,
    reviewer,
    viewer,
    make_oscar_product,
    model_checkpoint,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        make_oscar_product("Leather ankle boots")
    client.force_login(reviewer)
    search = reverse("prodcat_oscar:prodcat-category-search")
    html = client.get(reverse(LIST_URL)).content.decode()
    assert f'data-prodcat-category-search="{search}"' in html
    assert "prodcat_django/category_autocomplete.js" in html
    found = client.get(search, {"q": "decor"}).json()["results"]
    assert [r["label"] for r in found] == ["Home > Home Decor"]
    assert client.get(search, {"q": ""}).json() == {"results": []}
    client.force_login(viewer)  # may look, not decide: no category search either
    assert client.get(search, {"q": "decor"}).status_code == 403


def test_the_product_list_shows_each_suggestion_under_its_title(
    client, reviewer, make_oscar_product, model_checkpoint, django_capture_on_commit_callbacks
):
    """Under each title of Oscar's dashboard product list: the merchant's word for the state,
    the category path and the score, linking to the review page; one query for the page's
    suggestions, however many rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("dashboard:catalogue-product-list")

    def suggestion_queries() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        sql = [q["sql"] for q in captured.captured_queries]
        return sum("prodcat_django_categorysuggestion" in q for q in sql), response.content.decode()

    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        boots = make_oscar_product("Leather ankle boots")
    suggestion = CategorySuggestion.objects.current_for(boots).get()
    one, html = suggestion_queries()
    assert 'class="prodcat-list-suggestion small"' in html
    label = CategorySuggestion.objects.get(pk=suggestion.pk).label
    assert ">Suggested</a>:" in html and label in html
    assert (
        f"({round(suggestion.score * 100)}%)" in html
        or f"{round(suggestion.score * 100)}%</strong>" in html
    )
    assert f"{reverse(LIST_URL)}?status=ready" in html
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            make_oscar_product(f"Boots {n}")
    five, html = suggestion_queries()
    assert html.count('class="prodcat-list-suggestion small"') == 6
    assert five == one


def test_a_flagged_suggestion_says_it_may_not_fit_and_makes_filing_the_main_action(
    client,
    reviewer,
    make_oscar_product,
    oscar_categories,
    model_checkpoint,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        flagged = make_oscar_product("Temple photo, summer collection", images=(png_bytes(),))
        fitting = make_oscar_product("Leather ankle boots", images=(png_bytes(),))
    # The verdict as the worker stores it (the tiny test model flags nothing by itself).
    CategorySuggestion.objects.current_for(flagged).update(
        out_of_taxonomy=True, ood_reason="far from every category"
    )
    client.force_login(reviewer)
    page = client.get(reverse("dashboard:catalogue-product", kwargs={"pk": flagged.pk}))
    html = page.content.decode()
    assert "This product may not fit any of your categories." in html
    assert "far from every category" in html and "alert-warning" in html
    assert 'value="accept" class="btn btn-sm btn-outline-secondary"' in html
    other = client.get(reverse("dashboard:catalogue-product", kwargs={"pk": fitting.pk}))
    assert "may not fit" not in other.content.decode()

    listing = client.get(reverse(LIST_URL)).content.decode()
    assert listing.count("prodcat-flagged") == 1 and "File under…" in listing
    only = client.get(reverse(LIST_URL), {"status": "ready", "flagged": "1"}).content.decode()
    assert "Temple photo, summer collection" in only and "Leather ankle boots" not in only
    assert "Leather ankle boots" in listing
