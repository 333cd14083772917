"""The training dataset of a shop: its labelled products, its merchants' decisions, the split.

Rules (:func:`build_dataset`):

- every product filed under a category is an example of that category; a category a human set
  (in the product form, or by accepting or correcting a suggestion) is ground truth;
- a category a merchant rejected for a product (a plain rejection of the suggestion that
  named it) is never a positive for that product: such a product is left out until a human
  files it again;
- a category only auto-accept put there is kept for training but never held out for
  evaluation (the gate must not grade a model on another model's guesses);
- categories with fewer than ``min_per_category`` examples are left out, and listed;
- the split is by group: products sharing a title (case and spacing ignored) or identical
  image bytes are one group, and a group lies on one side; a group's side is a hash of its
  members, so the held-out products stay held out from one retrain to the next.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import models

from prodcat_django.adapters import ProductAdapter
from prodcat_django.fingerprint import normalize_title, read_image_bytes
from prodcat_django.models import DecisionAction, SuggestionDecision
from prodcat_django.training.labels import category_label

#: Fewer labelled products than this cannot make a model worth a gate.
MIN_PRODUCTS = 10
#: Shares of the groups held out for validation (early stopping, calibration) and for the test
#: (the reported metrics and the promotion gate).
VAL_SHARE = 0.15
TEST_SHARE = 0.15

SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """A catalogue that cannot be trained on; the message says what to do."""


@dataclass
class Example:
    product_pk: str
    title: str
    image: bytes | None
    category_pk: str
    # "human" (a merchant's decision or the product form), "auto" (only auto-accept set it)
    source: str
    split: str = "train"

    @property
    def image_sha(self) -> str | None:
        return hashlib.sha256(self.image).hexdigest() if self.image is not None else None


@dataclass
class Dataset:
    spec: ProductAdapter
    examples: list[Example]
    categories: list[models.Model]  # kept, ordered by pk
    left_out: list[dict[str, Any]]  # {"category_pk", "name", "count"} below the minimum
    excluded: Counter = field(default_factory=Counter)  # reason -> products
    min_per_category: int = 5

    @property
    def has_images(self) -> bool:
        return any(e.image is not None for e in self.examples)

    def split(self, name: str) -> list[Example]:
        return [e for e in self.examples if e.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per category pk: examples per split."""
        table: dict[str, dict[str, int]] = {
            str(c.pk): dict.fromkeys(SPLITS, 0) for c in self.categories
        }
        for e in self.examples:
            table[e.category_pk][e.split] += 1
        return table

    def fingerprint(self) -> str:
        digest = hashlib.sha256(b"prodcat-dataset-v1\0")
        for e in sorted(self.examples, key=lambda e: e.product_pk):
            row = [e.product_pk, normalize_title(e.title), e.image_sha or "", e.category_pk]
            digest.update(json.dumps([*row, e.source, e.split]).encode() + b"\n")
        return "sha256:" + digest.hexdigest()

    def describe(self) -> list[str]:
        """The readable summary ``prodcat_train --dry-run`` prints."""
        names = {str(c.pk): category_label(c) for c in self.categories}
        split_sizes = Counter(e.split for e in self.examples)
        lines = [
            f"{len(self.examples)} products in {len(self.categories)} categories of "
            f"{self.spec.label} (train {split_sizes['train']}, validation {split_sizes['val']}, "
            f"held out {split_sizes['test']}); "
            f"{sum(e.image is not None for e in self.examples)} with an image",
            f"sources: {sum(e.source == 'human' for e in self.examples)} set by people, "
            f"{sum(e.source == 'auto' for e in self.examples)} by auto-accept only",
            "per category (train / validation / held out):",
        ]
        for pk, row in sorted(self.counts().items(), key=lambda kv: names[kv[0]].lower()):
            lines.append(f"  {names[pk]} [{pk}]: {row['train']} / {row['val']} / {row['test']}")
        if self.left_out:
            lines.append(
                f"left out, fewer than {self.min_per_category} products (--min-per-category):"
            )
            for item in self.left_out:
                lines.append(f"  {item['name']} [{item['category_pk']}]: {item['count']}")
        for reason, n in sorted(self.excluded.items()):
            lines.append(f"not used: {n} product(s) {reason}")
        return lines


def _decision_history(
    spec: ProductAdapter,
) -> tuple[dict[str, set[str]], dict[str, tuple[str, str]]]:
    """Per product: the categories merchants rejected (and did not choose later), and the
    latest decision's (action, category it set)."""
    rejected: dict[str, set[str]] = defaultdict(set)
    latest: dict[str, tuple[str, str]] = {}
    rows = (
        SuggestionDecision.objects.filter(content_type=spec.content_type)
        .order_by("created_at", "pk")
        .values_list("object_id", "action", "category_pk", "suggestion__category_pk")
    )
    for object_id, action, category_pk, suggested_pk in rows.iterator():
        if action == DecisionAction.REJECTED and suggested_pk:
            rejected[object_id].add(suggested_pk)
        if category_pk:
            rejected[object_id].discard(category_pk)  # chosen by a human later: a label again
        latest[object_id] = (action, category_pk)
    return rejected, latest


def build_dataset(
    spec: ProductAdapter,
    *,
    min_per_category: int = 5,
    read_images: bool = True,
    progress: Callable[[int, int], object] | None = None,
) -> Dataset:
    """Every labelled product of ``spec.model`` as an :class:`Example`, split by group.

    Raises :class:`DatasetError` for too few labelled products or fewer than two categories
    with ``min_per_category`` products. ``progress(done, total)`` is called while reading.
    """
    if min_per_category < 1:
        raise DatasetError("--min-per-category must be at least 1")
    rejected, latest = _decision_history(spec)
    if not spec.category_field or spec.category_model is None:
        raise DatasetError(
            f"{spec.label} has no category field of category rows to learn from (set "
            "category_field and category_model on its adapter)"
        )
    queryset = spec.model._default_manager.exclude(**{f"{spec.category_field}__isnull": True})
    total = queryset.count()
    examples: list[Example] = []
    excluded: Counter = Counter()
    for done, product in enumerate(queryset.order_by("pk").iterator(chunk_size=500), start=1):
        key = str(product.pk)
        category_pk = str(spec.current_category_key(product))
        if category_pk in rejected.get(key, ()):
            excluded["filed under a category a merchant rejected for them"] += 1
            continue
        title = spec.get_text(product)
        image = None
        if read_images:
            try:
                image = read_image_bytes(product, spec)
            except OSError:
                excluded["whose image file cannot be read (used without it)"] += 1
        if not title.strip() and image is None:
            excluded["with neither a title nor an image"] += 1
            continue
        auto = latest.get(key) == (DecisionAction.AUTO_ACCEPTED, category_pk)
        examples.append(Example(key, title, image, category_pk, "auto" if auto else "human"))
        if progress is not None and (done % 200 == 0 or done == total):
            progress(done, total)

    if len(examples) < MIN_PRODUCTS:
        raise DatasetError(
            f"only {len(examples)} usable labelled products of {spec.label} ({total} have a "
            f"category); training needs at least {MIN_PRODUCTS}. File more products under "
            "their categories, or accept/correct suggestions in the admin, then run "
            "prodcat_train again."
        )
    per_category = Counter(e.category_pk for e in examples)
    category_model = spec.category_model
    found = {str(c.pk): c for c in category_model._default_manager.filter(pk__in=per_category)}
    kept = sorted(
        (found[pk] for pk, n in per_category.items() if n >= min_per_category and pk in found),
        key=lambda c: str(c.pk),
    )
    kept_pks = {str(c.pk) for c in kept}
    left_out = [
        {
            "category_pk": pk,
            "name": category_label(found[pk]) if pk in found else pk,
            "count": n,
        }
        for pk, n in sorted(per_category.items())
        if pk not in kept_pks
    ]
    examples = [e for e in examples if e.category_pk in kept_pks]
    dataset = Dataset(spec, examples, kept, left_out, excluded, min_per_category)
    _check_trainable(dataset, total)
    assign_splits(examples)
    return dataset


def _check_trainable(dataset: Dataset, labelled: int) -> None:
    if len(dataset.categories) < 2:
        only = f" ({category_label(dataset.categories[0])})" if dataset.categories else ""
        raise DatasetError(
            f"only {len(dataset.categories) or 'no'} category has at least "
            f"{dataset.min_per_category} products{only}; a model needs two or more to choose "
            "between. Categorize products of other categories, or lower --min-per-category."
        )
    if len(dataset.examples) < MIN_PRODUCTS:
        raise DatasetError(
            f"only {len(dataset.examples)} products are in categories with at least "
            f"{dataset.min_per_category} products; training needs at least {MIN_PRODUCTS}. "
            "Categorize more products, or lower --min-per-category."
        )


def assign_splits(examples: list[Example]) -> None:
    """Put each group (shared normalised title or identical image bytes) on one side."""
    parent = list(range(len(examples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, e in enumerate(examples):
        keys = []
        title = normalize_title(e.title).casefold()
        if title:
            keys.append("t:" + title)
        if e.image is not None:
            keys.append("i:" + (e.image_sha or ""))
        for k in keys:
            if k in first:
                parent[find(i)] = find(first[k])
            else:
                first[k] = i
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(examples)):
        groups[find(i)].append(i)
    for members in groups.values():
        anchor = min(examples[i].product_pk for i in members)
        fraction = int(hashlib.sha256(anchor.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        auto = any(examples[i].source == "auto" for i in members)
        if fraction < TEST_SHARE and not auto:
            side = "test"
        elif fraction < TEST_SHARE + VAL_SHARE:
            side = "val"
        else:
            side = "train"
        for i in members:
            examples[i].split = side
    # A category needs training examples: move its held-out groups back where it has none.
    trained = {e.category_pk for e in examples if e.split == "train"}
    for e in examples:
        if e.category_pk not in trained:
            for other in examples:
                if other.category_pk == e.category_pk:
                    other.split = "train"
            trained.add(e.category_pk)


def stage_images(examples: list[Example], folder: Path) -> dict[str, Path]:
    """Write each distinct image once, named by its sha256; product pk -> file."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for e in examples:
        if e.image is None:
            continue
        target = folder / f"{e.image_sha}.img"
        if not target.exists():
            target.write_bytes(e.image)
        paths[e.product_pk] = target
    return paths


def export(dataset: Dataset, out_dir: Path) -> dict[str, Any]:
    """Write the classifier's CSV format: ``train.csv``, ``val.csv``, ``test.csv`` (``id,title,
    label,image,label_name``; ``label`` is the category pk, ``image`` relative to the CSV) with
    ``images/``, ``categories.json`` and ``decisions.csv`` (the audit trail)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = stage_images(dataset.examples, out_dir / "images")
    names = {str(c.pk): category_label(c) for c in dataset.categories}
    for split in SPLITS:
        with (out_dir / f"{split}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "title", "label", "image", "label_name"])
            for e in dataset.split(split):
                path = images.get(e.product_pk)
                image = path.relative_to(out_dir).as_posix() if path else ""
                writer.writerow([e.product_pk, e.title, e.category_pk, image, names[e.category_pk]])
    (out_dir / "categories.json").write_text(
        json.dumps(
            {
                "product_model": dataset.spec.label,
                "categories": {pk: {"name": name} for pk, name in names.items()},
                "left_out": dataset.left_out,
                "fingerprint": dataset.fingerprint(),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    decisions = SuggestionDecision.objects.filter(content_type=dataset.spec.content_type).order_by(
        "created_at", "pk"
    )
    with (out_dir / "decisions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["product_id", "action", "suggested_label", "category", "previous", "user", "at"]
        )
        for d in decisions.iterator():
            writer.writerow(
                [
                    d.object_id,
                    d.action,
                    d.from_label,
                    d.category_pk,
                    d.previous_category_pk,
                    d.username,
                    d.created_at.isoformat(),
                ]
            )
    return {
        "products": len(dataset.examples),
        "categories": len(dataset.categories),
        "images": len(set(images.values())),
        "splits": {s: len(dataset.split(s)) for s in SPLITS},
    }


def product_spec(label: str | None = None) -> ProductAdapter:
    """The registered product model ``label`` ("app_label.Model"), or the only one registered."""
    from prodcat_django.registry import get_adapter_by_label, registered_adapters

    if label:
        try:
            return get_adapter_by_label(label)
        except LookupError as exc:
            raise DatasetError(str(exc)) from None
    specs = registered_adapters()
    if not specs:
        raise DatasetError(
            "no product model is registered with prodcat_django; call prodcat_django.register()"
        )
    if len(specs) > 1:
        raise DatasetError(
            "several product models are registered ("
            + ", ".join(s.label for s in specs)
            + "); choose one with --model app_label.Model"
        )
    return specs[0]
