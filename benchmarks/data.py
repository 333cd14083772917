"""The benchmark's products: fashion16 test products where ``../shared/datasets`` has them
(read in place, never copied), else drawn ones (a title and a 320x320 JPEG each)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASET = REPO_ROOT.parent / "shared" / "datasets" / "fashion16"

_TITLES = [
    "Roadster Men Navy Blue Checked Casual Shirt",
    "Puma Unisex Black Running Sports Shoes",
    "Fossil Women Rose Gold Analog Watch",
    "Baggit Women Brown Handbag",
    "Nike Men White Sports Socks",
]


@dataclass(frozen=True)
class BenchProduct:
    title: str
    image: bytes  # JPEG


def products(n: int) -> tuple[list[BenchProduct], str]:
    """``n`` products and where they came from."""
    test_csv = DATASET / "test.csv"
    if test_csv.exists():
        found = []
        with test_csv.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                path = DATASET / row["image"]
                if path.exists():
                    found.append(BenchProduct(row["title"], path.read_bytes()))
                if len(found) == n:
                    return found, f"fashion16 test, first {n} rows ({test_csv})"
    return [BenchProduct(_TITLES[i % len(_TITLES)], drawn_photo(i)) for i in range(n)], "drawn"


def drawn_photo(n: int) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 320), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((60 + n % 40, 50, 260, 280 - n % 50), fill=(20 * (n % 12), 70, 140))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
