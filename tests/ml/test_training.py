"""Training determinism and the calibration maths, on tiny random encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prodcat_django.ml.calibration import (
    accept_stats,
    auto_accept_threshold,
    fit_temperature,
    reliability,
)
from prodcat_django.ml.data import read_products
from prodcat_django.ml.encoders import build_image_encoder, build_text_encoder
from prodcat_django.ml.features import FeatureCache
from prodcat_django.ml.testing import tiny_config
from prodcat_django.ml.train import TrainOptions, encode_split, train

from .test_cli import CLASSES, write_csv


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    labels = sorted(CLASSES)
    spec = tiny_config(len(labels))
    cache = FeatureCache(
        build_text_encoder(spec["text_encoder"]),
        build_image_encoder(spec["image_encoder"]),
        root=root / "cache",
        progress=False,
    )
    columns = ["title", "title_terse"]
    train_split = encode_split(
        read_products(write_csv(root, "train", 24, seed=0)),
        cache,
        labels,
        columns,
        ("orig", "flip"),
    )
    val_split = encode_split(
        read_products(write_csv(root, "val", 9, seed=1)), cache, labels, columns
    )
    return train_split, val_split, labels, spec


def _train(splits, seed: int, fusion: str = "attention"):
    train_split, val_split, labels, spec = splits
    options = TrainOptions(fusion=fusion, width=16, heads=2, epochs=2, batch_size=8, seed=seed)
    return train(
        options,
        train_split,
        val_split,
        labels,
        text_spec=spec["text_encoder"],
        image_spec=spec["image_encoder"],
        progress=False,
    )


def test_same_seed_gives_identical_weights(splits):
    a, b = _train(splits, seed=3), _train(splits, seed=3)
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert a.temperature == b.temperature and a.history == b.history
    c = _train(splits, seed=4)
    assert any(not torch.equal(state_a[k], c.model.state_dict()[k]) for k in state_a)


@pytest.mark.parametrize("fusion", ["text", "image", "concat"])
def test_baselines_train_in_the_same_loop(splits, fusion):
    result = _train(splits, seed=0, fusion=fusion)
    assert result.model.fusion == fusion
    assert result.temperature > 0 and len(result.history) == 2
    assert set(result.val) == {"full", "terse", "image_only", "title_only"}


def test_fit_temperature_recovers_a_known_temperature():
    generator = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 5, generator=generator) * 3
    targets = torch.multinomial(torch.softmax(true_logits, -1), 1, generator=generator)[:, 0]
    # Logits twice too confident: the fitted temperature should be close to 2.
    assert fit_temperature(true_logits * 2, targets) == pytest.approx(2.0, rel=0.1)


def test_auto_accept_threshold_is_lowest_score_with_target_precision():
    scores = np.array([0.99, 0.98, 0.97, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 1, 1, 1, 0, 1, 0], dtype=bool)
    assert auto_accept_threshold(scores, correct, 0.99) == 0.9
    assert auto_accept_threshold(scores, correct, 0.8) == 0.7  # 5 of 6 at or above 0.7
    assert auto_accept_threshold(scores, np.zeros(7, dtype=bool), 0.99) is None
    stats = accept_stats(scores, correct, 0.9)
    assert stats == {"threshold": 0.9, "precision": 1.0, "coverage": pytest.approx(4 / 7), "n": 4}


def test_ece_is_zero_when_confidence_matches_accuracy():
    scores = np.array([0.75] * 4 + [0.5] * 4)
    correct = np.array([1, 1, 1, 0, 1, 0, 1, 0], dtype=bool)
    assert reliability(scores, correct)["ece"] == pytest.approx(0.0)
    assert reliability(np.ones(4), np.zeros(4, dtype=bool))["ece"] == pytest.approx(1.0)
