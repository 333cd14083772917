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

A name alone is a weak prototype: "Baby Care" is one short phrase, a catalogue's titles are
brand and model names. Given a ``pool`` of the shop's own *unlabelled* products (no decisions
needed), ``refine_names`` turns each name-only category into a prototype of the products nearest
to it, by a few rounds of name-anchored k-means over the pool (the categories that do have
products take part with their mean vector, fixed): the text half keeps the name, the image half
is learnt from the photos of the products the name attracts. On flipkart7 this lifts names-only
accuracy from 49.5% to about 70% (docs/results.md).
"""

from __future__ import annotations

import copy
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
    "refine_names",
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


def _halves(x: np.ndarray, text_dim: int) -> tuple[np.ndarray, np.ndarray]:
    return x[..., :text_dim], x[..., text_dim:]


def text_dim_of(names: np.ndarray) -> int:
    """The text half's width, read off name vectors (their image half is exactly zero)."""
    used = np.flatnonzero(np.any(np.asarray(names) != 0, axis=0))
    return int(used.max()) + 1 if len(used) else 0


def refine_names(
    names: np.ndarray,
    pool: np.ndarray,
    *,
    anchors: np.ndarray | None = None,
    text_dim: int | None = None,
    rounds: int = 10,
) -> np.ndarray:
    """(C, D) prototypes for ``names`` (C, D) learnt from unlabelled ``pool`` products (U, D).

    Each round assigns every pool product to its most similar prototype (``anchors`` (A, D),
    the mean vectors of categories that have products, compete but never move) and moves each
    name's prototype to its products: the text half to the unit mean of the name and the
    products' titles (the name keeps it on topic), the image half to the unit mean of their
    photos. Halves keep the weights the space gives them (read off the name and the pool). A
    name that attracts no product keeps its previous prototype.
    """
    names = np.asarray(names, dtype=np.float32)
    pool = np.asarray(pool, dtype=np.float32)
    if not len(names) or not len(pool) or rounds < 1:
        return names.copy()
    dt = text_dim_of(names) if text_dim is None else int(text_dim)
    name_t, _ = _halves(names, dt)
    pool_t, pool_i = _halves(pool, dt)
    # The halves' scales in this space (sqrt(w) and sqrt(1 - w)), from rows that have them.
    t_scale = float(np.median(np.linalg.norm(name_t, axis=1)))
    i_norms = np.linalg.norm(pool_i, axis=1)
    i_scale = float(np.median(i_norms[i_norms > 1e-6])) if (i_norms > 1e-6).any() else 0.0
    if anchors is None:
        anchors = np.zeros((0, names.shape[1]), np.float32)
    else:  # mean vectors are shorter than products: give their halves the products' lengths
        a_t, a_i = _halves(np.asarray(anchors, dtype=np.float32), dt)
        anchors = np.concatenate([l2_rows(a_t) * t_scale, l2_rows(a_i) * i_scale], axis=1)
    protos = names.copy()
    for _ in range(int(rounds)):
        nearest = similarity(pool, np.concatenate([protos, anchors])).argmax(axis=1)
        moved = protos.copy()
        for c in range(len(names)):
            members = nearest == c
            if not members.any():
                continue
            text = l2_rows(name_t[c : c + 1]) + l2_rows(pool_t[members].mean(0, keepdims=True))
            moved[c, :dt] = l2_rows(text)[0] * t_scale
            photos = pool_i[members][i_norms[members] > 1e-6]
            moved[c, dt:] = (
                l2_rows(photos.mean(0, keepdims=True))[0] * i_scale if len(photos) else 0.0
            )
        protos = moved
    return protos


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
    ``pool``: optional (U, D) unlabelled products of the shop; a category known by name only
    is then scored against its ``refine_names`` prototype instead of the bare name.
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
        pool: np.ndarray | None = None,
        pool_rounds: int = 10,
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
        self._raw_names = self._names
        self.pool_rounds = int(pool_rounds)
        self.pooled = 0  # how many unlabelled products shaped the name-only prototypes
        if pool is not None:
            self._use_pool(pool)

    @property
    def name_only(self) -> list[Key]:
        """The categories known by their name alone (no filed product yet)."""
        return [k for k in self._name_keys if k not in self._bounds]

    def with_pool(self, pool: np.ndarray | None) -> NeighbourHead:
        """This head with its name-only prototypes learnt from ``pool`` (see ``refine_names``);
        the products' arrays are shared, so this is cheap next to building a head."""
        head = copy.copy(self)
        head._names, head.pooled = self._raw_names, 0
        if pool is not None:
            head._use_pool(pool)
        return head

    def _use_pool(self, pool: np.ndarray) -> None:
        only = [j for j, k in enumerate(self._name_keys) if k not in self._bounds]
        pool = np.asarray(pool, dtype=np.float32)
        if not len(pool) or not only:
            return
        if pool.ndim != 2 or pool.shape[1] != self._raw_names.shape[1]:
            raise ValueError(f"pool must be (U, {self._raw_names.shape[1]}), got {pool.shape}")
        anchors = [self._vectors[lo:hi].mean(0) for lo, hi in self._bounds.values()]
        names = self._raw_names.copy()
        names[only] = refine_names(
            names[only],
            pool,
            anchors=np.stack(anchors) if anchors else None,
            text_dim=text_dim_of(self._raw_names),
            rounds=self.pool_rounds,
        )
        self._names, self.pooled = names, len(pool)

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
