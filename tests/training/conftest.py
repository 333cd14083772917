"""Fixtures of the training tests: a shop whose categories are learnable from titles and photos
(tiny random encoders), model storage and local copies in temporary folders."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from prodcat_django.classifier import clear_cache
from prodcat_django.training import store
from tests.shop_data import make_user, media_root  # noqa: F401 - autouse media root

#: Words and photo colours per test category: tiny encoders can tell them apart.
SHOP = {
    "Shoes": (("boots", "sneakers", "sandals"), "saddlebrown"),
    "Watches": (("watch", "chronograph", "wristwatch"), "gold"),
    "Bags": (("handbag", "backpack", "tote"), "navy"),
    "Home Decor": (("vase", "cushion", "lamp"), "seagreen"),
}


def photo(colour: str, seed: int) -> bytes:
    """A distinct picture per product: the category's colour, a white shape placed by seed."""
    image = Image.new("RGB", (56, 56), colour)
    x = 4 + seed % 20
    ImageDraw.Draw(image).rectangle((x, 10, x + 24, 40), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def isolated_store(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    settings.PRODCAT = {**settings.PRODCAT, "MODEL_CACHE_DIR": str(tmp_path / "model-cache")}
    monkeypatch.setenv("PRODCAT_FEATURE_CACHE", str(tmp_path / "features"))
    store.forget_local_copies()
    yield
    store.forget_local_copies()
    clear_cache()


@pytest.fixture
def fill_shop(categories: dict, make_product: Callable[..., Any]) -> Callable[..., list]:
    """``fill_shop(per_category=12, images=True)``: categorized products of every category."""

    def fill(per_category: int = 12, images: bool = True) -> list:
        products = []
        for c, (name, (words, colour)) in enumerate(SHOP.items()):
            for i in range(per_category):
                title = f"{words[i % 3]} model {c}{i:02d} {words[(i + 1) % 3]}"
                image = photo(colour, i) if images else None
                products.append(make_product(title=title, image=image, category=categories[name]))
        return products

    return fill


@pytest.fixture
def manager(db: None) -> Any:
    return make_user("manager", "activate_modelversion", "view_modelversion", is_staff=True)


@pytest.fixture
def reviewer(db: None) -> Any:
    # Deciding sets the product's category: review and change permission on the product.
    return make_user("reviewer", "review_categorysuggestion", "change_product")
