"""The shipped model's abstention target and the learning curve's 10-per-category point.

Real encoders on ../shared/datasets (skipped where absent). Quick from a clean clone too: it
encodes only the two test splits (728 + 105 products) and a 10-per-category sample of each
training split (160 + 70), through the feature cache (warm: seconds; cold: about a minute of
encoding on two cores), so it runs in CI rather than only where the cache is warm.
"""

from __future__ import annotations

import numpy as np
import pytest

from prodcat_django.ml.data import read_products
from prodcat_django.ml.manifest import default_checkpoint_dir

from .conftest import datasets_dir

pytestmark = [pytest.mark.slow, pytest.mark.dataset]

# docs/results.md, "Out of taxonomy" and "Learning curve": measured on the full splits; the
# floors are the targets (abstention) and the MiniLM class-mean reference (10 shots).
OUTSIDE_FLAGGED_MIN = 0.90
INSIDE_FLAGGED_MAX = 0.05
REFERENCE_10 = {"flipkart7": 0.79, "fashion16": 0.75}


def _csv(dataset: str, split: str):
    path = datasets_dir() / dataset / f"{split}.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the datasets live in ../shared/datasets")
    return path


@pytest.fixture(scope="module")
def tools():
    from prodcat_django.ml.abstain import embed_tail
    from prodcat_django.ml.checkpoint import load_model
    from prodcat_django.ml.cli_ood import _encoders

    path, info, cache = _encoders(default_checkpoint_dir(), "cpu", None, True)
    model, _ = load_model(path, "cpu")
    return info, cache, model, embed_tail(info.config["image_encoder"])


def _outputs(tools, products):
    from prodcat_django.ml.abstain import split_outputs
    from prodcat_django.ml.train import encode_split

    info, cache, model, tail = tools
    split = encode_split(products, cache, info.labels, ["title"], ("orig",), "error")
    return split, split_outputs(model, split, "title", tail)


def _flagged(detector, outputs) -> np.ndarray:
    verdicts = detector.verdicts(
        outputs.embedding,
        outputs.logits,
        title_only=outputs.title_only,
        image_only=outputs.image_only,
        has_text=outputs.has_text,
        has_image=outputs.has_image,
    )
    return np.array([v.flagged for v in verdicts])


def test_abstention_target_on_test(tools):
    from prodcat_django.ml.ood import load_detector

    info = tools[0]
    detector = load_detector(info.path)
    assert detector is not None, f"{info.path} has no out-of-taxonomy detector"
    inside = read_products(_csv("fashion16", "test"))
    outside = [p for p in read_products(_csv("flipkart7", "test")) if p.label not in info.labels]
    assert {p.label for p in outside} and "Watches" not in {p.label for p in outside}
    inside_rate = _flagged(detector, _outputs(tools, inside)[1]).mean()
    outside_rate = _flagged(detector, _outputs(tools, outside)[1]).mean()
    assert inside_rate <= INSIDE_FLAGGED_MAX, f"fashion16 test flagged {inside_rate:.3f}"
    assert outside_rate >= OUTSIDE_FLAGGED_MIN, f"flipkart7 flagged {outside_rate:.3f}"


@pytest.mark.parametrize("dataset", ["flipkart7", "fashion16"])
def test_ten_products_per_category_beat_the_reference(tools, dataset):
    from prodcat_django.ml.cli_ood import _pooled
    from prodcat_django.ml.learning_curve import (
        DEFAULT_SETTINGS,
        category_name,
        draw,
        head_accuracy,
    )

    _, cache, _, tail = tools
    train = read_products(_csv(dataset, "train"))
    test = read_products(_csv(dataset, "test"))
    categories = sorted({p.label for p in train})
    labels = np.asarray([p.label for p in train], dtype=object)
    accuracies = []
    names = cache.text([category_name(c) for c in categories])
    name_text = np.stack([s.astype(np.float32).mean(0) for s in names])
    test_split, _ = _outputs(tools, test)
    test_pooled = _pooled(test_split, tail, [p.label for p in test])
    for seed in range(3):
        rows = draw(labels, 10, 1000 + seed)
        sample = [train[i] for i in rows]
        split, _ = _outputs(tools, sample)
        pooled = _pooled(split, tail, [p.label for p in sample])
        accuracies.append(
            head_accuracy(
                pooled,
                test_pooled,
                name_text,
                categories,
                k=10,
                seed=0,
                mode="title+photo",
                settings=DEFAULT_SETTINGS,
            )
        )
    assert np.mean(accuracies) > REFERENCE_10[dataset], accuracies
