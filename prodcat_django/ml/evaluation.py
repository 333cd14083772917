"""Evaluating a trained model on a product CSV, through the feature cache."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prodcat_django.ml.metrics import classification_report
from prodcat_django.ml.model import FusionModel
from prodcat_django.ml.train import EncodedSplit, predict_logits


def evaluate_split(
    model: FusionModel,
    split: EncodedSplit,
    true_labels: Sequence[str],
    model_labels: Sequence[str],
    temperature: float,
    threshold: float | None,
    *,
    column: str | None,
    use_image: bool,
    device: str = "cpu",
) -> dict:
    """The full report (see ``classification_report``) for one condition."""
    share: list[float] = []
    logits = predict_logits(model, split, column, use_image, device=device, image_share=share)
    probs = torch.softmax(logits / temperature, dim=-1)
    scores, index = probs.max(1)
    predicted = [model_labels[i] for i in index.tolist()]
    report = classification_report(true_labels, predicted, scores.numpy(), model_labels, threshold)
    if share:  # attention models: how much of the pooled attention the photo gets
        report["attention_image_share"] = float(sum(share) / len(share))
    return report


def summary(report: dict) -> dict:
    """The headline numbers of a report, for manifest.json."""
    return {
        "n": report["n"],
        "accuracy": round(report["accuracy"], 5),
        "macro_f1": round(report["macro_f1"], 5),
        "ece": round(report["ece"], 5),
        "auto_accept": {
            k: (round(v, 5) if isinstance(v, float) else v)
            for k, v in report["auto_accept"].items()
        },
    }
