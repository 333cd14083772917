"""Test helpers: a valid checkpoint whose encoders are tiny random-weight modules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from prodcat_django.ml.checkpoint import save_checkpoint
from prodcat_django.ml.model import FusionModel


def tiny_config(
    num_labels: int,
    *,
    fusion: str = "attention",
    seed: int = 0,
    name: str = "tiny",
    version: str = "0.0.1",
) -> dict[str, Any]:
    """config.json of a tiny model: hashing-word text encoder and a random conv image encoder."""
    return {
        "name": name,
        "version": version,
        "text_encoder": {
            "kind": "tiny-random",
            "dim": 16,
            "vocab_size": 512,
            "max_tokens": 32,
            "seed": seed,
        },
        "image_encoder": {
            "kind": "tiny-random",
            "channels": 8,
            "out_channels": 16,
            "grid": 7,
            "image_size": 28,
            "seed": seed,
        },
        "model": {
            "fusion": fusion,
            "width": 16,
            "heads": 2,
            "layers": 1,
            "dropout": 0.0,
            "num_labels": num_labels,
        },
        "weights_dtype": "float32",
    }


def build_random_checkpoint(
    out_dir: str | Path,
    labels: Sequence[str],
    *,
    name: str = "tiny",
    version: str = "0.0.1",
    fusion: str = "attention",
    seed: int = 0,
) -> Path:
    """Write a valid, verifiable checkpoint with random weights to ``out_dir/<name>/<version>``.

    No pretrained weights load, so ``Predictor.load`` on it takes milliseconds. Its temperature
    is 1 and its auto-accept threshold 0.5, so tests can exercise both branches.
    """
    labels = list(labels)
    if not labels:
        raise ValueError("labels must not be empty")
    config = tiny_config(len(labels), fusion=fusion, seed=seed, name=name, version=version)
    torch.manual_seed(seed)
    model = FusionModel(config)
    target = Path(out_dir) / name / version
    return save_checkpoint(
        target,
        model,
        config,
        labels,
        {
            "temperature": 1.0,
            "threshold": 0.5,
            "metrics": {},
            "training": {
                "command": "prodcat_django.ml.testing.build_random_checkpoint",
                "seed": seed,
            },
        },
    )
