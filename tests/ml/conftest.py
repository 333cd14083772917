"""Fixtures for the classifier tests: drawn images and tiny random checkpoints (no Django)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

LABELS = ("Shirts", "Shoes", "Watches")
REPO = Path(__file__).resolve().parents[2]


def datasets_dir() -> Path:
    return Path(os.environ.get("PRODCAT_DATASETS", REPO / ".." / "shared" / "datasets")).resolve()


@pytest.fixture(autouse=True)
def _two_threads() -> None:
    torch.set_num_threads(2)


def drawn_image(shape: str, colour: str = "navy", size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A product-like picture: one filled shape on white."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w // 5, h // 5, 4 * w // 5, 4 * h // 5)
    {"square": draw.rectangle, "circle": draw.ellipse}.get(shape, draw.rectangle)(box, fill=colour)
    if shape == "triangle":
        image = Image.new("RGB", size, "white")
        ImageDraw.Draw(image).polygon(
            [(w // 2, h // 6), (w // 6, 5 * h // 6), (5 * w // 6, 5 * h // 6)], fill=colour
        )
    return image


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    from prodcat_django.ml.testing import build_random_checkpoint

    return build_random_checkpoint(tmp_path / "ckpt", LABELS)
