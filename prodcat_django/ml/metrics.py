"""Classification metrics for evaluation reports (labels unseen by the model count as errors)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prodcat_django.ml.calibration import accept_stats, reliability


def classification_report(
    true: Sequence[str],
    predicted: Sequence[str],
    scores: np.ndarray,
    model_labels: Sequence[str],
    threshold: float | None,
) -> dict:
    """Accuracy, macro F1, per-class P/R/F1, confusion, ECE and auto-accept statistics.

    ``true`` may hold labels the model has never seen: they are always errors, appear in
    ``unknown_labels`` and as rows of the confusion matrix, and count in macro F1 (with F1 0).
    """
    true, predicted = list(true), list(predicted)
    correct = np.array([t == p for t, p in zip(true, predicted, strict=True)], dtype=bool)
    unknown = sorted(set(true) - set(model_labels))
    labels = [*model_labels, *unknown]
    position = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(true, predicted, strict=True):
        confusion[position[t], position[p]] += 1
    per_class = {}
    f1s = []
    for label in labels:
        i = position[label]
        tp, support, predicted_n = confusion[i, i], confusion[i].sum(), confusion[:, i].sum()
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(support),
        }
        if support or predicted_n:
            f1s.append(f1)
    calibration = reliability(scores, correct)
    return {
        "n": len(true),
        "accuracy": float(correct.mean()) if len(true) else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "ece": calibration["ece"],
        "per_class": per_class,
        "auto_accept": accept_stats(scores, correct, threshold),
        "confusion": {"labels": labels, "matrix": confusion.tolist()},
        "unknown_labels": {label: int(confusion[position[label]].sum()) for label in unknown},
        "reliability": calibration["bins"],
    }
