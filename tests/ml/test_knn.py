"""The pooled space (Predictor.embed) and the nearest-neighbour head, on drawn products."""

import numpy as np
import pytest

from prodcat_django.ml.knn import (
    NeighbourHead,
    Ranked,
    merge,
    pooled_embedding,
    similarity,
)
from prodcat_django.ml.predictor import LabelScore, Predictor, ProductInput

from .conftest import drawn_image


@pytest.fixture
def predictor(tiny_checkpoint):
    return Predictor.load(tiny_checkpoint, device="cpu")


def test_embed_shapes_halves_and_prediction_row(predictor):
    items = [
        ProductInput("Navy cotton shirt", drawn_image("square")),
        ProductInput("", drawn_image("circle", "red")),  # no title: text half zero
        ProductInput("Leather strap watch", None),  # no image: image half zero
    ]
    rows = predictor.embed(items)
    dt = predictor.text_encoder.dim
    assert rows.dtype == np.float32 and rows.shape == (3, predictor.embedding_dim)
    assert np.linalg.norm(rows[0]) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(rows[1, :dt], 0) and np.linalg.norm(rows[1, dt:]) > 0
    assert np.allclose(rows[2, dt:], 0) and np.linalg.norm(rows[2, :dt]) > 0
    names = predictor.embed_texts(["Mugs", "Kitchen mugs and cups"])
    assert names.shape == (2, predictor.embedding_dim) and np.allclose(names[:, dt:], 0)
    # The worker gets the same row with each prediction, from the same pass.
    predictions = predictor.predict(items, batch_size=2)
    for p, row in zip(predictions, rows, strict=True):
        assert p.embedding is not None and np.allclose(p.embedding, row, atol=1e-5)
    assert str(predictor.embedding_dim) in predictor.embedding_id
    assert predictor.embedding_id == Predictor.load(predictor.info.path).embedding_id
    with pytest.raises(TypeError, match="text 0: expected a str"):
        predictor.embed_texts([None])


def test_similarity_compares_the_halves_both_sides_have():
    text = np.array([[1.0, 0.0], [1.0, 0.0]])
    image = np.array([[0.0, 1.0], [1.0, 0.0]])
    both = pooled_embedding(text, image)
    title_only = pooled_embedding(text[:1], np.zeros((1, 2)))
    sims = similarity(title_only, both)
    assert sims[0] == pytest.approx([1.0, 1.0])  # identical titles, photos not compared
    assert similarity(both[:1], both)[0] == pytest.approx([1.0, 0.5])
    assert similarity(np.zeros((1, 4)), both)[0] == pytest.approx([0.0, 0.0])


def _mug(n):
    colours = ["white", "beige", "ivory", "linen"]
    return ProductInput(f"ceramic coffee mug {n}", drawn_image("circle", colours[n % 4]))


def _shirt(n):
    return ProductInput(f"cotton shirt blue {n}", drawn_image("square", "navy"))


def test_a_new_category_is_learnt_from_three_products(predictor):
    filed = [_mug(0), _mug(1), _mug(2), _shirt(0), _shirt(1), _shirt(2)]
    keys = ["mugs"] * 3 + ["shirts"] * 3
    names = dict(zip(["lamps"], predictor.embed_texts(["desk lamp"]), strict=True))
    head = NeighbourHead(predictor.embed(filed), keys, names)
    assert set(head.keys) == {"mugs", "shirts", "lamps"}
    scores = head.scores(predictor.embed([_mug(3), _shirt(3), ProductInput("desk lamp")]))
    assert max(scores[0], key=scores[0].get) == "mugs"
    assert max(scores[1], key=scores[1].get) == "shirts"
    assert max(scores[2], key=scores[2].get) == "lamps"  # known by its name only
    for row in scores:
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-5)
    assert head.source("mugs") == "neighbours" and head.source("lamps") == "name"


def test_merge_keeps_model_categories_and_adds_the_heads_others():
    model = (LabelScore("Shirts", 0.8), LabelScore("Watches", 0.2))
    head = {"cat-shirts": 0.1, "cat-mugs": 0.6, "cat-lamps": 0.3}
    keys = {"Shirts": "cat-shirts", "Watches": "cat-watches"}
    ranked = merge(model, head, keys)
    assert all(isinstance(r, Ranked) for r in ranked)
    as_dict = {r.key: (r.score, r.source) for r in ranked}
    # The head's mass outside the model (0.9) goes to its categories; the model shares 0.1.
    assert as_dict["cat-mugs"] == pytest.approx((0.6, "neighbours"))
    assert as_dict["cat-shirts"][0] == pytest.approx(0.08)
    assert as_dict["cat-shirts"][1] == "model"
    assert sum(r.score for r in ranked) == pytest.approx(1.0)
    assert ranked[0].key == "cat-mugs"
    key, _score, source = ranked[-1]  # a plain tuple too
    assert (key, source) == ("cat-watches", "model")
    # A label the shop has not matched to a category is left out.
    assert "Watches" not in {r.key for r in merge({"Watches": 1.0}, {}, {})}


def test_head_method_merge_names_sources(predictor):
    names = dict(zip(["lamps"], predictor.embed_texts(["desk lamp"]), strict=True))
    head = NeighbourHead(predictor.embed([_mug(0)]), ["mugs"], names)
    scores = head.scores(predictor.embed([ProductInput("desk lamp")]))[0]
    ranked = head.merge({"Shirts": 1.0}, scores, {"Shirts": "shirts"})
    assert {r.key: r.source for r in ranked} == {
        "shirts": "model",
        "mugs": "neighbours",
        "lamps": "name",
    }


def test_head_rejects_bad_input():
    with pytest.raises(ValueError, match="2 vectors but 1 keys"):
        NeighbourHead(np.zeros((2, 4)), ["a"])
    with pytest.raises(ValueError, match="name vectors have 3 dims"):
        NeighbourHead(np.ones((1, 4)), ["a"], {"b": np.ones(3)})
    assert NeighbourHead(np.zeros((0, 4)), []).scores(np.ones((2, 4))) == [{}, {}]


def test_big_catalogue_shortlist_agrees_with_the_exact_lookup():
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((40, 24)).astype(np.float32)
    keys = rng.integers(0, 40, 2000)
    vectors = centres[keys] + 0.3 * rng.standard_normal((2000, 24)).astype(np.float32)
    queries = centres[rng.integers(0, 40, 50)] + 0.3 * rng.standard_normal((50, 24))
    exact = NeighbourHead(vectors, keys.tolist())
    shortlisted = NeighbourHead(vectors, keys.tolist(), exact_limit=100, shortlist=5)
    a, b = exact.category_scores(queries), shortlisted.category_scores(queries)
    assert exact.keys == shortlisted.keys
    assert (a.argmax(1) == b.argmax(1)).all()
    top = a.argmax(1)
    assert np.allclose(a[np.arange(50), top], b[np.arange(50), top], atol=1e-5)


def _space(rng, centres, n, text_dim=4, noise=0.15, text_noise=None):
    """``n`` pooled rows around each centre's (text, image) pair, halves at w = 0.5."""
    rows, labels = [], []
    text_noise = noise if text_noise is None else text_noise
    for c, (t, i) in enumerate(centres):
        text = np.asarray(t, float) + text_noise * rng.standard_normal((n, text_dim))
        image = np.asarray(i, float) + noise * rng.standard_normal((n, len(i)))
        rows.append(pooled_embedding(text, image))
        labels += [c] * n
    return np.concatenate(rows), np.asarray(labels)


def test_unlabelled_products_turn_names_into_prototypes():
    # Two categories whose names sit between their titles (a weak, ambiguous text cue), but
    # whose photos separate them: the name alone misfiles many, the pool fixes it.
    rng = np.random.default_rng(0)
    centres = [([1, 0.6, 0, 0], [1, 0, 0]), ([0.6, 1, 0, 0], [0, 1, 0])]
    pool, _ = _space(rng, centres, 60, text_noise=0.6)  # titles say little
    test, truth = _space(rng, centres, 40, text_noise=0.6)
    names_text = np.array([[1.0, 0.9, 0.0, 0.0], [0.9, 1.0, 0.0, 0.0]])
    names = pooled_embedding(names_text, np.zeros((2, 3)))
    bare = NeighbourHead(np.zeros((0, 7)), [], dict(zip("ab", names, strict=True)))
    pooled = bare.with_pool(pool)
    assert bare.pooled == 0 and pooled.pooled == len(pool) and pooled.name_only == ["a", "b"]

    def accuracy(head):
        return (head.category_scores(test).argmax(1) == truth).mean()

    assert accuracy(pooled) >= 0.95 > accuracy(bare)
    # The learnt prototypes carry a photo half; the bare head's names do not.
    assert np.abs(pooled._names[:, 4:]).sum() > 0 and np.abs(bare._names[:, 4:]).sum() == 0
    # Same thing built in one go; a pool of None gives the bare head back.
    again = NeighbourHead(np.zeros((0, 7)), [], dict(zip("ab", names, strict=True)), pool=pool)
    assert np.allclose(again._names, pooled._names)
    assert np.allclose(pooled.with_pool(None)._names, bare._names)


def test_pool_leaves_categories_with_products_alone_and_checks_shapes():
    rng = np.random.default_rng(1)
    centres = [([1, 0, 0, 0], [1, 0, 0]), ([0, 1, 0, 0], [0, 1, 0]), ([0, 0, 1, 0], [0, 0, 1])]
    pool, labels = _space(rng, centres, 30)
    filed = pool[labels == 0][:3]
    names = pooled_embedding(np.eye(4)[:3], np.zeros((3, 3)))
    head = NeighbourHead(filed, ["a"] * 3, dict(zip("abc", names, strict=True)), pool=pool)
    assert head.name_only == ["b", "c"]
    # "a" has products, so its name row is never moved; "b" and "c" learnt their photos.
    assert np.allclose(head._names[0], names[0])
    assert np.abs(head._names[1:, 4:]).sum() > 0
    test, truth = _space(rng, centres, 20)
    assert (head.category_scores(test).argmax(1) == truth).mean() >= 0.95
    with pytest.raises(ValueError, match="pool must be"):
        NeighbourHead(filed, ["a"] * 3, dict(zip("abc", names, strict=True)), pool=pool[:, :5])
