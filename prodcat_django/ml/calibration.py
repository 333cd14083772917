"""Temperature scaling, the auto-accept threshold, and expected calibration error."""

from __future__ import annotations

import math

import numpy as np
import torch


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The T > 0 minimising validation NLL of softmax(logits / T) (LBFGS on log T)."""
    logits, targets = logits.detach().float(), targets.detach().long()
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    return temperature if math.isfinite(temperature) and temperature > 0 else 1.0


def auto_accept_threshold(
    scores: np.ndarray, correct: np.ndarray, target_precision: float = 0.99
) -> float | None:
    """Lowest top score t such that predictions scoring >= t are >= target_precision correct.

    None when no threshold reaches the target (auto-accept then stays off).
    """
    order = np.argsort(-scores, kind="stable")
    s, c = scores[order], correct[order].astype(float)
    precision = np.cumsum(c) / np.arange(1, len(c) + 1)
    # Only cut between distinct scores: ties fall on the same side of a threshold.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    ok = np.flatnonzero((precision >= target_precision) & last_of_tie)
    return float(s[ok[-1]]) if len(ok) else None


def accept_stats(scores: np.ndarray, correct: np.ndarray, threshold: float | None) -> dict:
    """Precision and coverage of the predictions at or above ``threshold``."""
    if threshold is None:
        return {"threshold": None, "precision": None, "coverage": 0.0, "n": 0}
    accepted = scores >= threshold
    n = int(accepted.sum())
    return {
        "threshold": float(threshold),
        "precision": float(correct[accepted].mean()) if n else None,
        "coverage": float(n / max(1, len(scores))),
        "n": n,
    }


def reliability(scores: np.ndarray, correct: np.ndarray, bins: int = 15) -> dict:
    """ECE over equal-width confidence bins, and the per-bin table for a reliability diagram."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        in_bin = index == b
        n = int(in_bin.sum())
        if n:
            confidence, accuracy = float(scores[in_bin].mean()), float(correct[in_bin].mean())
            ece += n / len(scores) * abs(confidence - accuracy)
            table.append(
                {
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                    "n": n,
                    "confidence": confidence,
                    "accuracy": accuracy,
                }
            )
    return {"ece": float(ece), "bins": table}
