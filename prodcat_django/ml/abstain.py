"""Fitting and measuring a trained model's out-of-taxonomy detector on encoded splits.

``split_outputs`` runs the model once per condition (title + photo, title only, photo only) on
a split from the feature cache and computes the pooled vectors of ``ml/knn.py`` (the same rows
``Predictor.embed`` gives). ``calibrate`` chooses the "far" method (and its reference set) by
measurement on validation data and fits the threshold on in-taxonomy validation products
(``ml/ood.fit_detector``); ``detector_report`` gives the flagged rates, AUROC and trade-off
curve of a detector on in-taxonomy and outside products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from prodcat_django.ml.knn import TEXT_WEIGHT, pooled_embedding
from prodcat_django.ml.model import FusionEnsemble, FusionModel, ImageTail
from prodcat_django.ml.ood import (
    FAR_METHODS,
    OODDetector,
    class_means,
    far_scores,
    fit_detector,
    reference_sample,
)
from prodcat_django.ml.train import EncodedSplit, predict_logits

# Candidates compared on validation: (method, neighbours, training vectors kept per class).
# At most 64 per class, so the detector file stays small (all 5195 fashion16 training
# vectors made a 17 MB file for no gain on the outside products: docs/results.md).
CANDIDATES: tuple[tuple[str, int, int], ...] = (
    ("knn", 1, 64),
    ("knn", 5, 64),
    ("knn", 10, 64),
    ("class_mean", 1, 0),
    ("energy", 0, 0),
    ("max_logit", 0, 0),
    ("msp", 0, 0),
)


@dataclass
class SplitOutputs:
    """What the detector reads, for every product of one split."""

    embedding: np.ndarray  # (N, D) pooled vectors
    logits: np.ndarray  # (N, C) title + photo
    title_only: np.ndarray  # (N, C)
    image_only: np.ndarray  # (N, C)
    has_text: np.ndarray  # (N,) bool
    has_image: np.ndarray  # (N,) bool
    labels: np.ndarray  # (N,) label index, -1 for a label the model does not know

    def subset(self, rows: np.ndarray) -> SplitOutputs:
        return SplitOutputs(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def embed_tail(image_spec: dict[str, Any]) -> ImageTail:
    """The pretrained image tail of the pooled space, built as ``Predictor`` builds it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(image_spec.get("seed", 0)))
        return ImageTail(image_spec, pretrained=True).eval()


@torch.inference_mode()
def split_embedding(
    split: EncodedSplit,
    column: str | None,
    tail: ImageTail,
    text_dim: int,
    batch_size: int = 256,
    text_weight: float = TEXT_WEIGHT,
) -> np.ndarray:
    """(N, D) pooled rows of a split (``column`` None: no title, the text half is zero)."""
    maps, present = split.images["orig"]
    if column is not None:
        states, mask = split.texts[column]
        weights = mask.unsqueeze(-1).float()
        text = ((states.float() * weights).sum(1) / weights.sum(1).clamp(min=1.0)).numpy()
    else:
        text = np.zeros((len(split), text_dim), dtype=np.float32)
    gaps = [
        tail(maps[start : start + batch_size].float()).mean((2, 3))
        for start in range(0, len(split), batch_size)
    ]
    gap = torch.cat(gaps).numpy() * present[:, None].numpy()
    return pooled_embedding(text, gap, text_weight=text_weight)


@torch.inference_mode()
def split_outputs(
    model: FusionModel | FusionEnsemble,
    split: EncodedSplit,
    column: str | None,
    tail: ImageTail,
    device: str = "cpu",
) -> SplitOutputs:
    """The model's logits under the three conditions and the pooled rows of one split."""
    n = len(split)
    return SplitOutputs(
        embedding=split_embedding(split, column, tail, model.text_dim),
        logits=predict_logits(model, split, column, True, device=device).numpy(),
        title_only=predict_logits(model, split, column, False, device=device).numpy(),
        image_only=predict_logits(model, split, None, True, device=device).numpy(),
        has_text=split.texts[column][1].any(1).numpy() if column else np.zeros(n, bool),
        has_image=split.images["orig"][1].numpy(),
        labels=split.labels.numpy(),
    )


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an outside product scores higher than an inside one), ties counted half."""
    inside, outside = np.asarray(inside, float), np.asarray(outside, float)
    if not len(inside) or not len(outside):
        return float("nan")
    order = np.concatenate([inside, outside])
    ranks = _average_ranks(order)
    outside_ranks = ranks[len(inside) :]
    n_in, n_out = len(inside), len(outside)
    return float((outside_ranks.sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2  # 1-based average rank
            start = end
    return ranks


def _reference(method: str, per_class: int, train: SplitOutputs, text_dim: int) -> np.ndarray:
    if method == "knn":
        return reference_sample(train.embedding, train.labels, per_class)
    if method == "class_mean":
        return class_means(train.embedding, train.labels, text_dim)
    return np.zeros((0, train.embedding.shape[1]), dtype=np.float32)


def _fit(
    candidate: tuple[str, int, int],
    train: SplitOutputs,
    val: SplitOutputs,
    temperature: float,
    text_dim: int,
    rate: float,
    disagreement: bool,
) -> OODDetector:
    method, neighbours, per_class = candidate
    return fit_detector(
        method,
        reference=_reference(method, per_class, train, text_dim),
        val_embedding=val.embedding,
        val_logits=val.logits,
        val_title_only=val.title_only if disagreement else None,
        val_image_only=val.image_only if disagreement else None,
        val_has_text=val.has_text,
        val_has_image=val.has_image,
        temperature=temperature,
        neighbours=max(1, neighbours),
        rate=rate,
    )


def _scores(detector: OODDetector, outputs: SplitOutputs) -> np.ndarray:
    return np.array(
        [
            v.score
            for v in detector.verdicts(
                outputs.embedding,
                outputs.logits,
                title_only=outputs.title_only,
                image_only=outputs.image_only,
                has_text=outputs.has_text,
                has_image=outputs.has_image,
            )
        ]
    )


def detector_report(
    detector: OODDetector, inside: SplitOutputs, outside: SplitOutputs | None = None
) -> dict[str, Any]:
    """Flagged shares at the detector's threshold, AUROC and the trade-off curve."""
    s_in = _scores(detector, inside)
    report: dict[str, Any] = {
        "threshold": detector.threshold,
        "inside": {"n": len(s_in), "flagged": float((s_in > detector.threshold).mean())},
    }
    if outside is not None:
        s_out = _scores(detector, outside)
        report["outside"] = {"n": len(s_out), "flagged": float((s_out > detector.threshold).mean())}
        report["auroc"] = auroc(s_in, s_out)
        report["curve"] = [
            {
                "threshold": float(t),
                "inside_flagged": float((s_in > t).mean()),
                "outside_flagged": float((s_out > t).mean()),
            }
            for t in np.unique(np.concatenate([[0.0], np.quantile(s_in, np.linspace(0.5, 1, 26))]))
        ]
    return report


def leave_classes_out(
    candidate: tuple[str, int, int],
    train: SplitOutputs,
    val: SplitOutputs,
    text_dim: int,
    rate: float = 0.05,
) -> dict[str, float]:
    """Pooled-space methods only: each class in turn left out of the reference (and "inside").

    Mean AUROC and share flagged of the left-out class's validation products, at a threshold
    fitted on the other classes' validation products.
    """
    method, neighbours, per_class = candidate
    aurocs, flagged = [], []
    for c in np.unique(train.labels):
        keep_train, keep_val = train.labels != c, val.labels != c
        ref = _reference(method, per_class, train.subset(np.flatnonzero(keep_train)), text_dim)
        k = max(1, neighbours)
        inside = far_scores(method, embedding=val.embedding[keep_val], reference=ref, neighbours=k)
        out = far_scores(method, embedding=val.embedding[~keep_val], reference=ref, neighbours=k)
        threshold = np.quantile(inside, 1 - rate, method="higher")
        aurocs.append(auroc(inside, out))
        flagged.append(float((out > threshold).mean()))
    return {"auroc": float(np.mean(aurocs)), "flagged": float(np.mean(flagged))}


def mismatched_pairs(outputs: SplitOutputs, text_dim: int, seed: int = 0) -> SplitOutputs:
    """Each title paired with the photo of a product of another label (a sweater title with a
    flip-flop photo): the pooled rows and single-modality logits need no new model pass; the
    joint logits are the title's product's (only logit-based "far" methods read them)."""
    rng = np.random.default_rng(seed)
    both = np.flatnonzero(outputs.has_text & outputs.has_image)
    j = both[rng.permutation(len(both))]
    keep = outputs.labels[both] != outputs.labels[j]
    i, j = both[keep], j[keep]
    emb = outputs.embedding
    return SplitOutputs(
        embedding=pooled_embedding(emb[i, :text_dim], emb[j, text_dim:], text_weight=TEXT_WEIGHT),
        logits=outputs.logits[i],
        title_only=outputs.title_only[i],
        image_only=outputs.image_only[j],
        has_text=np.ones(len(i), dtype=bool),
        has_image=np.ones(len(i), dtype=bool),
        labels=outputs.labels[i],
    )


def calibrate(
    train: SplitOutputs,
    val: SplitOutputs,
    *,
    temperature: float,
    text_dim: int,
    outside: SplitOutputs | None = None,
    method: str | None = None,
    rate: float = 0.05,
    disagreement: bool = True,
    info: dict[str, Any] | None = None,
) -> tuple[OODDetector, list[dict[str, Any]]]:
    """The detector of a trained model, and the comparison that chose its method.

    ``outside`` (validation products of other categories) and a leave-classes-out split of
    ``val`` are what the candidates are compared on: the share of outside products flagged at
    the in-taxonomy threshold, then AUROC. ``method`` forces one of ``FAR_METHODS``.
    """
    candidates = [c for c in CANDIDATES if method is None or c[0] == method]
    if not candidates:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(FAR_METHODS)}")
    table = []
    best: tuple[tuple[float, ...], OODDetector, dict] | None = None
    mixed = mismatched_pairs(val, text_dim)
    for candidate in candidates:
        detector = _fit(candidate, train, val, temperature, text_dim, rate, disagreement)
        row: dict[str, Any] = {
            "method": candidate[0],
            "neighbours": candidate[1] if candidate[0] == "knn" else None,
            "per_class": candidate[2] if candidate[0] == "knn" else None,
            "reference_rows": len(detector.reference),
            "val_flagged": detector.info["val_flagged_rate"],
        }
        if outside is not None:
            report = detector_report(detector, val, outside)
            row["outside_flagged"] = report["outside"]["flagged"]
            row["outside_auroc"] = report["auroc"]
            plain = _fit(candidate, train, val, temperature, text_dim, rate, False)
            far_only = detector_report(plain, val, outside)
            row["outside_flagged_far_only"] = far_only["outside"]["flagged"]
            row["outside_auroc_far_only"] = far_only["auroc"]
        if len(mixed.labels):
            row["mismatched_flagged"] = detector_report(detector, val, mixed)["outside"]["flagged"]
        lco = 0.0
        if candidate[0] in ("knn", "class_mean"):
            row["leave_classes_out"] = leave_classes_out(candidate, train, val, text_dim, rate)
            lco = row["leave_classes_out"]["auroc"]
        table.append(row)
        # Outside products flagged first (to the percent: 90 products), then the harder
        # leave-classes-out AUROC, then the smaller file.
        key = (
            round(row.get("outside_flagged", 0.0), 2),
            round(row.get("outside_auroc", 0.0), 3),
            round(lco, 3),
            -len(detector.reference),
        )
        if best is None or key > best[0]:
            best = (key, detector, row)
    assert best is not None
    _, detector, row = best
    detector.info.update(info or {})
    detector.info["chosen"] = dict(row)
    return detector, table


def outputs_for(
    model: FusionModel | FusionEnsemble,
    splits: Sequence[EncodedSplit],
    column: str,
    image_spec: dict[str, Any],
    device: str = "cpu",
) -> list[SplitOutputs]:
    tail = embed_tail(image_spec).to(device)
    return [split_outputs(model, s, column, tail, device) for s in splits]


DEFAULT_METHOD = "class_mean"  # chosen on fashion16 / flipkart7 validation (docs/results.md)


def attach_detector(
    checkpoint_dir,
    model: FusionModel | FusionEnsemble,
    train_split: EncodedSplit,
    val_split: EncodedSplit,
    column: str,
    image_spec: dict[str, Any],
    temperature: float,
    encoder_ids: tuple[str, str],
    *,
    device: str = "cpu",
    info: dict[str, Any] | None = None,
) -> OODDetector:
    """Train time: fit the default detector (no outside data to choose on) and install it.

    ``encoder_ids``: the text and image encoders' ids (they name the pooled space).
    """
    from prodcat_django.ml.knn import embedding_id
    from prodcat_django.ml.ood import install_detector

    train, val = outputs_for(model, [train_split, val_split], column, image_spec, device)
    detector = _fit(
        (DEFAULT_METHOD, 1, 0), train, val, temperature, model.text_dim, 0.05, disagreement=True
    )
    detector.embedding_id = embedding_id(*encoder_ids, train.embedding.shape[1], TEXT_WEIGHT)
    detector.info.update(info or {})
    install_detector(checkpoint_dir, detector)
    return detector
