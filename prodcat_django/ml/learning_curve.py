"""The neighbour head's learning curve: accuracy with 0 (names only), 1, 3, 10, 30 products.

For each point ``k`` and seed, ``k`` labelled products per category are drawn from the training
split and filed in a ``NeighbourHead`` (with every category's name, which is all it has at ``k =
0``, and the whole training split, unlabelled, as the shop's catalogue that shapes the name-only
categories, as the worker's undecided products do); the test split is scored once. Two modes:
``text`` (titles only, the image half zero on both sides) and ``title+photo``. The head's
settings (neighbours, name weight and offset, and the pooled space's text weight) are chosen on
the validation split, averaged over the points, before the test split is looked at. The
reference (``class_mean``): MiniLM alone and the nearest class mean (names at ``k = 0``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prodcat_django.ml.knn import (
    NAME_TEMPLATE,
    NeighbourHead,
    l2_rows,
    pooled_embedding,
    similarity,
)

SHOTS = (0, 1, 3, 10, 30)
# The head's defaults (NeighbourHead, TEXT_WEIGHT): between the settings validation chose on
# flipkart7 (1 neighbour, name weight 0.5) and fashion16 (3, 2.0), at the shipped space's
# text weight (docs/results.md, "Learning curve").
DEFAULT_SETTINGS = {"neighbours": 3, "name_weight": 1.0, "name_offset": 0.0, "text_weight": 0.5}
GRID = {
    "neighbours": (1, 3, 5, 10),
    "name_weight": (0.5, 1.0, 2.0),
    "name_offset": (0.0, 0.1),
    "text_weight": (0.3, 0.5, 0.7),
}


def category_name(label: str) -> str:
    """The name a merchant would write ("CasualShoes" -> "Casual Shoes"), as the head embeds
    it (``NAME_TEMPLATE``, as ``Predictor.embed_texts`` does)."""
    return NAME_TEMPLATE.format(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label).strip())


@dataclass
class Pooled:
    """One split's pooled halves, L2-normalised (zeros where absent), and its labels."""

    text: np.ndarray  # (N, Dt)
    image: np.ndarray  # (N, Di)
    labels: np.ndarray  # (N,) label strings

    def rows(self, mode: str, text_weight: float) -> np.ndarray:
        image = self.image if mode == "title+photo" else np.zeros_like(self.image)
        return pooled_embedding(self.text, image, text_weight=text_weight)


def draw(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Row indices of ``k`` products per label (all of a label that has fewer), seeded."""
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    for label in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == label)
        rows.extend(rng.choice(idx, size=min(k, len(idx)), replace=False).tolist())
    return np.asarray(sorted(rows), dtype=int)


def _names(categories: Sequence[str], name_text: np.ndarray, dim_image: int, w: float):
    rows = pooled_embedding(name_text, np.zeros((len(categories), dim_image)), text_weight=w)
    return dict(zip(categories, rows, strict=True))


def head_accuracy(
    train: Pooled,
    test: Pooled,
    name_text: np.ndarray,
    categories: Sequence[str],
    *,
    k: int,
    seed: int,
    mode: str,
    settings: dict[str, float],
) -> float:
    """Accuracy on ``test`` of a head holding ``k`` drawn products per category + names."""
    w = settings["text_weight"] if mode == "title+photo" else 1.0
    rows = draw(train.labels, k, seed) if k > 0 else np.zeros(0, dtype=int)
    drawn = Pooled(train.text[rows], train.image[rows], train.labels[rows])
    vectors = drawn.rows(mode, w)
    head = NeighbourHead(
        vectors,
        train.labels[rows].tolist(),
        _names(categories, name_text, train.image.shape[1], w),
        neighbours=int(settings["neighbours"]),
        name_weight=settings["name_weight"],
        name_offset=settings["name_offset"],
        # The shop's catalogue before any decision: the training split, unlabelled.
        pool=train.rows(mode, w),
    )
    scores = head.category_scores(test.rows(mode, w))
    predicted = np.asarray(head.keys, dtype=object)[scores.argmax(axis=1)]
    return float((predicted == test.labels).mean())


def class_mean_accuracy(
    train: Pooled, test: Pooled, name_text: np.ndarray, categories: Sequence[str], k: int, seed: int
) -> float:
    """The reference: MiniLM title vectors, nearest class mean (the name's vector at k = 0)."""
    if k == 0:
        means = l2_rows(name_text)
    else:
        rows = draw(train.labels, k, seed)
        means = l2_rows(
            np.stack([train.text[rows][train.labels[rows] == c].mean(0) for c in categories])
        )
    predicted = np.asarray(categories, dtype=object)[similarity(test.text, means).argmax(axis=1)]
    return float((predicted == test.labels).mean())


def choose_settings(
    train: Pooled,
    val: Pooled,
    name_text: np.ndarray,
    categories: Sequence[str],
    shots: Sequence[int],
    seeds: int,
    mode: str,
) -> tuple[dict[str, float], float]:
    """The grid point with the best mean validation accuracy over ``shots`` and seeds."""
    grid = dict(GRID)
    if mode == "text":
        grid["text_weight"] = (1.0,)
    best: tuple[float, dict[str, float]] | None = None
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values, strict=True))
        accs = [
            head_accuracy(
                train, val, name_text, categories, k=k, seed=s, mode=mode, settings=settings
            )
            for k in shots
            for s in range(seeds if k > 0 else 1)
        ]
        score = float(np.mean(accs))
        if best is None or score > best[0]:
            best = (score, settings)
    assert best is not None
    return best[1], best[0]


def learning_curve(
    train: Pooled,
    val: Pooled,
    test: Pooled,
    name_text: np.ndarray,
    categories: Sequence[str],
    *,
    shots: Sequence[int] = SHOTS,
    seeds: int = 5,
    select_seeds: int = 3,
) -> dict[str, Any]:
    """Mean (and spread over seeds) test accuracy per mode and point; settings chosen on val."""
    result: dict[str, Any] = {"shots": list(shots), "seeds": seeds, "modes": {}}
    for mode in ("text", "title+photo"):
        settings, val_score = choose_settings(
            train, val, name_text, categories, shots, select_seeds, mode
        )
        points = {}
        for k in shots:
            accs = [
                head_accuracy(
                    train,
                    test,
                    name_text,
                    categories,
                    k=k,
                    seed=1000 + s,
                    mode=mode,
                    settings=settings,
                )
                for s in range(seeds if k > 0 else 1)
            ]
            points[str(k)] = {"mean": float(np.mean(accs)), "std": float(np.std(accs))}
        result["modes"][mode] = {"settings": settings, "val_mean": val_score, "test": points}
    result["modes"]["class_mean (reference)"] = {
        "test": {
            str(k): {
                "mean": float(
                    np.mean(
                        [
                            class_mean_accuracy(train, test, name_text, categories, k, 1000 + s)
                            for s in range(seeds if k > 0 else 1)
                        ]
                    )
                )
            }
            for k in shots
        }
    }
    return result
