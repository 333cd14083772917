"""The probe baseline: logistic regression on frozen pooled features of the same encoders.

The yardstick the trained model must beat (issue 9): per product, the mean-pooled MiniLM
sentence embedding (token states averaged over the attention mask, [CLS]/[SEP] included, as
sentence-transformers pools all-MiniLM-L6-v2) and the global-average-pooled EfficientNet-Lite0
map (the *pretrained* last block, ``conv_head`` and BatchNorm run on the cached block input),
each L2-normalised. One multinomial logistic regression per input condition, trained on the
features that condition has (full title + image: both concatenated; image only: the image
vector; ...), its C chosen on validation accuracy. Everything comes from the feature cache, so a
probe costs seconds once the splits are encoded.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from prodcat_django.ml.model import ImageTail
from prodcat_django.ml.train import EncodedSplit

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)  # an all-zero row (no title, no image) stays zero


def pooled_text(split: EncodedSplit, column: str) -> np.ndarray:
    """(N, D) mean-pooled, L2-normalised title embeddings; zeros for an empty title."""
    states, mask = split.texts[column]
    weights = mask.unsqueeze(-1).float()
    mean = (states.float() * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    return _l2(mean.numpy())


@torch.no_grad()
def pooled_image(split: EncodedSplit, tail: ImageTail, batch_size: int = 256) -> np.ndarray:
    """(N, C) global-average-pooled, L2-normalised pretrained-tail maps; zeros if no image."""
    maps, present = split.images["orig"]
    tail.eval()
    out = []
    for start in range(0, len(split), batch_size):
        fmap = tail(maps[start : start + batch_size].float())
        out.append(fmap.mean((2, 3)))
    pooled = torch.cat(out).numpy() * present[:, None].numpy()
    return _l2(pooled)


def pretrained_tail(image_spec: dict) -> ImageTail:
    torch.manual_seed(0)  # the tiny-random tail of tests is initialised from the global RNG
    return ImageTail(image_spec, pretrained=True).eval()


@dataclass
class ProbeResult:
    """Per condition: the chosen C, validation and test accuracy, and the C sweep."""

    conditions: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    def accuracy(self, split: str = "test") -> dict[str, float]:
        return {name: c[split] for name, c in self.conditions.items() if c.get(split) is not None}


def probe_conditions(
    split: EncodedSplit, title_column: str, terse_column: str | None
) -> dict[str, tuple[str | None, bool]]:
    """The same conditions as the trained model's evaluation: name -> (text column, image)."""
    result: dict[str, tuple[str | None, bool]] = {"full": (title_column, True)}
    if terse_column and terse_column in split.texts:
        result["terse"] = (terse_column, True)
    result["image_only"] = (None, True)
    result["title_only"] = (title_column, False)
    return result


def _features(split, column, use_image, image_vectors) -> np.ndarray:
    parts = []
    if column is not None:
        parts.append(pooled_text(split, column))
    if use_image:
        parts.append(image_vectors)
    return np.concatenate(parts, axis=1)


def fit_probe(
    train_split: EncodedSplit,
    val_split: EncodedSplit,
    test_split: EncodedSplit | None,
    image_spec: dict,
    *,
    title_column: str = "title",
    terse_column: str | None = "title_terse",
    c_grid: Sequence[float] = C_GRID,
    max_iter: int = 3000,
) -> ProbeResult:
    """Fit one logistic regression per condition (C by validation accuracy) and score it."""
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    tail = pretrained_tail(image_spec)
    splits = {"train": train_split, "val": val_split}
    if test_split is not None:
        splits["test"] = test_split
    images = {name: pooled_image(s, tail) for name, s in splits.items()}
    y = {name: s.labels.numpy() for name, s in splits.items()}
    result = ProbeResult()
    for name, (column, use_image) in probe_conditions(
        train_split, title_column, terse_column
    ).items():
        if any(column is not None and column not in s.texts for s in splits.values()):
            continue
        x = {k: _features(s, column, use_image, images[k]) for k, s in splits.items()}
        sweep, best = {}, None
        # Ascending C with warm starts: each fit starts from the previous (smaller-C) solution.
        clf = LogisticRegression(max_iter=max_iter, warm_start=True)
        for c in sorted(c_grid):
            clf.set_params(C=c)
            clf.fit(x["train"], y["train"])
            val_acc = float((clf.predict(x["val"]) == y["val"]).mean())
            sweep[str(c)] = round(val_acc, 5)
            if best is None or val_acc > best[0]:  # ties keep the smaller C
                best = (val_acc, c, copy.deepcopy(clf))
        assert best is not None
        val_acc, c, clf = best
        entry = {"C": c, "val": round(val_acc, 5), "val_by_C": sweep}
        if "test" in x:
            entry["test"] = round(float((clf.predict(x["test"]) == y["test"]).mean()), 5)
            entry["n_test"] = len(y["test"])
        result.conditions[name] = entry
    result.seconds = time.perf_counter() - started
    return result
