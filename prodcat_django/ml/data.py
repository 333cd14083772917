"""Reading product CSVs (``id,title,label,image``; image path relative to the CSV's folder)."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED_COLUMNS = ("id", "title", "label", "image")


class DataError(ValueError):
    """A CSV that cannot be used: missing file or column, or a malformed row."""


@dataclass(frozen=True)
class Product:
    id: str
    label: str
    titles: dict[str, str]  # column name -> text, for every text column the CSV has
    image: Path | None  # absolute path, None where the CSV leaves it empty
    row: int = field(default=0, compare=False)  # 1-based data row, for error messages

    def title(self, column: str = "title") -> str:
        return self.titles.get(column, "")


def read_products(path: str | Path, title_column: str = "title") -> list[Product]:
    """Read a product CSV. Text columns kept: ``title``, ``title_terse`` and ``title_column``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such CSV file")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in (*REQUIRED_COLUMNS, title_column) if c not in columns]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(missing)}; "
                f"found {', '.join(columns) or 'none'}"
            )
        text_columns = [
            c for c in dict.fromkeys(("title", "title_terse", title_column)) if c in columns
        ]
        products = []
        for number, record in enumerate(reader, start=1):
            if record.get("label") in (None, ""):
                raise DataError(f"{path}: row {number} (id {record.get('id')!r}) has no label")
            image = (record.get("image") or "").strip()
            products.append(
                Product(
                    id=str(record["id"]),
                    label=record["label"],
                    titles={c: (record.get(c) or "").strip() for c in text_columns},
                    image=(path.parent / image).resolve() if image else None,
                    row=number,
                )
            )
    if not products:
        raise DataError(f"{path}: no rows")
    return products


def fingerprint(paths: list[Path], products: list[Product] | None = None) -> str:
    """sha256 over the CSV files' bytes and the bytes of every image they name.

    Identifies the training data in the manifest: a changed row, or an image replaced under the
    same file name, gives a different fingerprint.
    """
    digest = hashlib.sha256()
    for p in paths:
        digest.update(Path(p).name.encode() + b"\0")
        digest.update(hashlib.sha256(Path(p).read_bytes()).digest())
    for product in products or []:
        if product.image is not None and product.image.is_file():
            digest.update(hashlib.sha256(product.image.read_bytes()).digest())
    return digest.hexdigest()
