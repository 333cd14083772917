"""Oscar's dashboard forms submitted as a merchant's browser does: a rendered HTML form read
into the data a browser would post (every formset's management form and hidden field
included), without knowing Oscar's formset prefixes."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from oscar.core.loading import get_model

#: The id of Oscar's dashboard product form.
PRODUCT_FORM = "create_update_product_form"


class _FormReader(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self.select: str | None = None
        self.select_values: list[str] = []
        self.first_option: str | None = None
        self.textarea: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.setdefault(name, []).append(
                a.get("value", "on" if kind == "checkbox" else "")
            )
        elif tag == "select" and name:
            self.select, self.select_values, self.first_option = name, [], None
        elif tag == "option" and self.select is not None:
            value = a.get("value", "")
            if self.first_option is None:
                self.first_option = value
            if "selected" in a:
                self.select_values.append(value)
        elif tag == "textarea" and name:
            self.textarea, self.text = name, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select" and self.select is not None:
            values = self.select_values or ([self.first_option] if self.first_option else [""])
            self.data.setdefault(self.select, []).extend(values)
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            self.data.setdefault(self.textarea, []).append("".join(self.text).strip("\n"))
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text.append(data)


def form_data(html: str, form_id: str) -> dict[str, Any]:
    """``{name: value}`` (a list for repeated names) of the form with ``id=form_id``."""
    reader = _FormReader(form_id)
    reader.feed(html)
    if not reader.data:
        raise AssertionError(f"no form with id {form_id!r} (or an empty one) in the page")
    return {k: v[0] if len(v) == 1 else v for k, v in reader.data.items()}


def field_with_suffix(data: dict[str, Any], suffix: str) -> str:
    """The one field name ending with ``suffix`` (e.g. ``"-0-category"``)."""
    names = [name for name in data if name.endswith(suffix)]
    if len(names) != 1:
        raise AssertionError(f"expected one field ending {suffix!r}, found {names}")
    return names[0]


def create_through_dashboard(
    client: Any, product_class: Any, category: Any, title: str, image: bytes | None
) -> Any:
    """Fills in Oscar's "create product" page as a merchant does: the form as rendered, a
    title, one category in the category formset, one file in the image formset."""
    url = reverse(
        "dashboard:catalogue-product-create", kwargs={"product_class_slug": product_class.slug}
    )
    page = client.get(url)
    assert page.status_code == 200
    data = form_data(page.content.decode(), PRODUCT_FORM)
    data["title"] = title
    data[field_with_suffix(data, "-0-category")] = str(category.pk)
    if image is not None:
        prefix = field_with_suffix(data, "-0-display_order").removesuffix("display_order")
        data[f"{prefix}original"] = SimpleUploadedFile("photo.png", image, "image/png")
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["form"].errors
    return get_model("catalogue", "Product").objects.get(title=title)
