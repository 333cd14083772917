"""The nearest-neighbour head: categories learnt from their products (and names), no training.

The pooled space (``pooled_embedding``): per product the mean-pooled title token states of the
text encoder and the global-average-pooled map of the *pretrained* EfficientNet tail, each
L2-normalised, the text half scaled by ``sqrt(w)`` and the image half by ``sqrt(1 - w)``; a
missing half is zeros. The space depends only on the frozen encoders, never on a trained
checkpoint, so stored vectors stay valid across retrainings (``embedding_id`` names it).

Similarity (``similarity``) is the dot product divided by the smaller squared norm of the
pair, which is the cosine over the halves both sides have: a title-only query against a
title + photo product compares titles, a category name (text half only) compares with the
title half of a product, two full products compare ``w * cos_text + (1 - w) * cos_image``.

``NeighbourHead`` scores every category it knows: the mean similarity to its ``neighbours``
most similar products, pulled towards the similarity to its name vector (worth ``name_weight``
products, shifted by ``name_offset`` because names are terser than titles); a category with no
products yet is scored by its name alone. A softmax at ``temperature`` turns the scores into
probabilities. The defaults were chosen on validation data (docs/results.md, "Learning curve").
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "EMBEDDING_VERSION",
    "NAME_TEMPLATE",
    "TEXT_WEIGHT",
    "NeighbourHead",
    "Ranked",
    "embedding_id",
    "l2_rows",
    "merge",
    "pooled_embedding",
    "similarity",
]

EMBEDDING_VERSION = 1
TEXT_WEIGHT = 0.5  # share of the squared norm on the title half (chosen on validation)
# How a category's name is embedded (Predictor.embed_texts): chosen on validation among a few
# phrasings for names-only accuracy (docs/results.md, "Learning curve").
NAME_TEMPLATE = "a product for {}"

Key = Hashable


def l2_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row (a missing half) stays zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def pooled_embedding(
    text: np.ndarray, image: np.ndarray, *, text_weight: float = TEXT_WEIGHT
) -> np.ndarray:
    """(N, Dt + Di) float32 from pooled text (N, Dt) and image (N, Di) vectors (zeros: absent)."""
    if not 0.0 <= text_weight <= 1.0:
        raise ValueError(f"text_weight must be within [0, 1], got {text_weight}")
    if len(text) != len(image):
        raise ValueError(f"{len(text)} text rows but {len(image)} image rows")
    return np.concatenate(
        [
            l2_rows(text) * np.float32(np.sqrt(text_weight)),
            l2_rows(image) * np.float32(np.sqrt(1.0 - text_weight)),
        ],
        axis=1,
    ).astype(np.float32)


def embedding_id(text_encoder_id: str, image_encoder_id: str, dim: int, text_weight: float) -> str:
    """Names the pooled space: stored vectors with another id must be re-computed."""
    return (
        f"pooled-v{EMBEDDING_VERSION}:{text_encoder_id}+{image_encoder_id}:gap-pretrained"
        f":d{dim}:w{text_weight:g}"
    )


def similarity(
    query: np.ndarray, vectors: np.ndarray, vector_norms: np.ndarray | None = None
) -> np.ndarray:
    """(N, M): cosine over the halves both rows have (see the module docstring); 0 if none.

    ``vector_norms``: the rows' squared norms, where the caller keeps them (the head does).
    """
    query = np.asarray(query, dtype=np.float32)
    vectors = np.asarray(vectors, dtype=np.float32)
    dots = query @ vectors.T
    qn = np.einsum("ij,ij->i", query, query)
    vn = np.einsum("ij,ij->i", vectors, vectors) if vector_norms is None else vector_norms
    scale = np.minimum(qn[:, None], vn[None, :])
    np.maximum(scale, 1e-12, out=scale)
    dots /= scale
    dots[scale <= 1e-12] = 0.0
    return dots


class Ranked(NamedTuple):
    """One merged suggestion; a tuple ``(key, score, source)`` too."""

    key: Key
    score: float  # calibrated probability
    source: str  # "model" | "neighbours" | "name"


class NeighbourHead:
    """Category scores from the pooled vectors of the products filed under each category.

    ``vectors`` (M, D) and ``keys`` (M,): one row per filed product and its category key.
    ``names``: optional key -> (D,) vector (``Predictor.embed_texts`` of the category's name
    and description); a key with a name and no products is still scored.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        keys: Sequence[Key],
        names: Mapping[Key, np.ndarray] | None = None,
        *,
        neighbours: int = 3,
        name_weight: float = 1.0,
        name_offset: float = 0.0,
        temperature: float = 0.05,
        exact_limit: int = 20_000,
        shortlist: int = 32,
    ) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.size == 0:
            vectors = vectors.reshape(0, vectors.shape[-1] if vectors.ndim == 2 else 0)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be (M, D), got shape {vectors.shape}")
        if len(vectors) != len(keys):
            raise ValueError(f"{len(vectors)} vectors but {len(keys)} keys")
        if neighbours < 1 or temperature <= 0:
            raise ValueError("neighbours must be >= 1 and temperature > 0")
        names = dict(names or {})
        self.neighbours, self.name_weight = int(neighbours), float(name_weight)
        self.name_offset, self.temperature = float(name_offset), float(temperature)
        # Group the rows by category once: each category is a contiguous block.
        order = sorted(range(len(keys)), key=lambda i: str(keys[i]))
        self._vectors = vectors[order]
        self._norms = np.einsum("ij,ij->i", self._vectors, self._vectors)
        self._bounds: dict[Key, tuple[int, int]] = {}
        for position, i in enumerate(order):
            lo, _ = self._bounds.get(keys[i], (position, position))
            self._bounds[keys[i]] = (lo, position + 1)
        self.keys: tuple[Key, ...] = tuple(dict.fromkeys([*self._bounds, *names]))
        self.exact_limit, self.shortlist = int(exact_limit), max(1, int(shortlist))
        if len(self._vectors) > self.exact_limit:  # the big-catalogue shortlist's mean vectors
            means = [self._vectors[lo:hi].mean(0) for lo, hi in self._bounds.values()]
            self._means = l2_rows(np.stack(means))
            self._mean_norms = np.einsum("ij,ij->i", self._means, self._means)
        self._name_keys = [k for k in self.keys if k in names]
        dim = self._vectors.shape[1] if len(self._vectors) else None
        if self._name_keys:
            rows = [np.asarray(names[k], dtype=np.float32) for k in self._name_keys]
            self._names = np.stack(rows)
            if dim is not None and self._names.shape[1] != dim:
                raise ValueError(f"name vectors have {self._names.shape[1]} dims, products {dim}")
        else:
            self._names = np.zeros((0, dim or 0), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._vectors)

    def _top_mean(self, sims: np.ndarray, size: int) -> tuple[np.ndarray, int]:
        """Mean of each row's ``neighbours`` largest values, and how many that is."""
        count = min(self.neighbours, size)
        if size > count:
            sims = np.partition(sims, size - count, axis=1)[:, -count:]
        return sims.mean(axis=1), count

    def _product_scores(self, query: np.ndarray) -> np.ndarray:
        """(N, categories with products): the mean similarity to each one's nearest products.

        Up to ``exact_limit`` filed products every similarity is computed. Past it (a big
        catalogue), each query is first compared with every category's mean vector, and only
        its ``shortlist`` closest categories are scored product by product; the others keep
        the similarity to their mean, capped below the lowest shortlisted score, so a lookup
        reads a few thousand vectors instead of all of them.
        """
        blocks = list(self._bounds.values())
        out = np.zeros((len(query), len(blocks)), dtype=np.float32)
        if len(self._vectors) <= self.exact_limit or len(blocks) <= self.shortlist:
            sims = similarity(query, self._vectors, self._norms)
            for c, (lo, hi) in enumerate(blocks):
                out[:, c] = self._top_mean(sims[:, lo:hi], hi - lo)[0]
            return out
        out[:] = similarity(query, self._means, self._mean_norms)
        for n in range(len(query)):
            row = query[n : n + 1]
            chosen = np.argpartition(-out[n], self.shortlist)[: self.shortlist]
            exact = np.empty(len(chosen), dtype=np.float32)
            for j, c in enumerate(chosen):
                lo, hi = blocks[c]
                sims = similarity(row, self._vectors[lo:hi], self._norms[lo:hi])
                exact[j] = self._top_mean(sims, hi - lo)[0][0]
            # The rest rank below every shortlisted category (a mean vector is closer than
            # any one product, so its similarity would overstate them).
            np.minimum(out[n], exact.min() - 1e-3, out=out[n])
            out[n, chosen] = exact
        return out

    def category_scores(self, query: np.ndarray) -> np.ndarray:
        """(N, len(keys)) raw similarity scores, in the order of ``self.keys``."""
        query = np.atleast_2d(np.asarray(query, dtype=np.float32))
        out = np.zeros((len(query), len(self.keys)), dtype=np.float32)
        products = self._product_scores(query) if len(self._vectors) else None
        name_sims = similarity(query, self._names) if len(self._names) else None
        name_col = {k: j for j, k in enumerate(self._name_keys)}
        product_col = {k: j for j, k in enumerate(self._bounds)}
        for c, key in enumerate(self.keys):
            product_score, count = None, 0
            if products is not None and key in product_col:
                lo, hi = self._bounds[key]
                product_score, count = products[:, product_col[key]], min(self.neighbours, hi - lo)
            if key in name_col:
                name_score = name_sims[:, name_col[key]] + self.name_offset
                if product_score is None:
                    out[:, c] = name_score
                else:
                    w = self.name_weight
                    out[:, c] = (count * product_score + w * name_score) / (count + w)
            else:
                out[:, c] = product_score
        return out

    def scores(self, query: np.ndarray) -> list[dict[Key, float]]:
        """Per query row: key -> probability over every category the head knows (sums to 1)."""
        query = np.atleast_2d(np.asarray(query, dtype=np.float32))
        if not self.keys:
            return [{} for _ in range(len(query))]
        raw = self.category_scores(query) / self.temperature
        raw -= raw.max(axis=1, keepdims=True)
        probs = np.exp(raw)
        probs /= probs.sum(axis=1, keepdims=True)
        return [dict(zip(self.keys, map(float, row), strict=True)) for row in probs]

    def merge(
        self,
        model_labels: Mapping[str, float] | Sequence[object],
        head_scores: Mapping[Key, float],
        model_keys: Mapping[str, Key],
    ) -> list[Ranked]:
        """``merge`` (below) with this head naming each head category's source."""
        return merge(model_labels, head_scores, model_keys, head=self)

    def source(self, key: Key) -> str:
        """ "neighbours" for a category with filed products, "name" for one known by name only."""
        return "neighbours" if key in self._bounds else "name"


def merge(
    model_labels: Mapping[str, float] | Sequence[tuple[str, float]] | Sequence[object],
    head_scores: Mapping[Key, float],
    model_keys: Mapping[str, Key],
    *,
    head: NeighbourHead | None = None,
) -> list[Ranked]:
    """One calibrated ranking from the trained model's and the head's probabilities.

    ``model_labels``: the model's label -> probability (a mapping, (label, score) pairs or
    ``LabelScore`` objects); ``model_keys``: label -> category key for the labels the shop has
    matched to a category. Categories the model can predict are scored by the model, the rest
    by the head: the head's probability mass on categories outside the model is what those
    categories get, and the model's probabilities share what is left. ``head`` (optional) says
    whether a head category is known from products ("neighbours") or by name only ("name").
    """
    if isinstance(model_labels, Mapping):
        pairs = list(model_labels.items())
    else:
        pairs = [
            (item.label, item.score) if hasattr(item, "label") else (item[0], item[1])
            for item in model_labels
        ]
    model_scores: dict[Key, float] = {}
    for label, score in pairs:
        if label in model_keys:
            key = model_keys[label]
            model_scores[key] = model_scores.get(key, 0.0) + float(score)
    covered = set(model_keys.values())
    outside = {k: float(v) for k, v in head_scores.items() if k not in covered}
    outside_mass = min(1.0, sum(outside.values()))
    total = sum(model_scores.values())
    ranked = [
        Ranked(k, (1.0 - outside_mass) * v / total if total > 0 else 0.0, "model")
        for k, v in model_scores.items()
    ]
    ranked += [
        Ranked(k, v, head.source(k) if head is not None else "neighbours")
        for k, v in outside.items()
    ]
    ranked.sort(key=lambda r: -r.score)
    return ranked
