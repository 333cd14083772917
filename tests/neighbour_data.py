"""Drawn products for the neighbour-head tests: mugs (a category the shipped fashion model
does not know) and the shop's own categories."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

MUG_TITLES = (
    "White ceramic coffee mug 350 ml",
    "Blue stoneware tea mug with handle",
    "Large porcelain mug for coffee and tea",
    "Red enamel camping mug 400 ml",
)


def mug_png(seed: int) -> bytes:
    """A mug on a plain background: a cylinder with an elliptic rim and a handle."""
    rng = random.Random(seed)
    image = Image.new("RGB", (224, 224), (235 + rng.randint(-10, 10),) * 3)
    draw = ImageDraw.Draw(image)
    body = tuple(rng.randint(30, 220) for _ in range(3))
    left, top, right, bottom = 60, 60 + rng.randint(-8, 8), 150, 180
    draw.rectangle((left, top, right, bottom), fill=body)
    draw.ellipse((left, top - 12, right, top + 12), fill=tuple(max(0, c - 40) for c in body))
    draw.ellipse((left, bottom - 10, right, bottom + 10), fill=body)
    draw.arc((right - 25, top + 25, right + 35, bottom - 25), -90, 90, fill=body, width=12)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
