"""Out of taxonomy: does a product fit none of the model's categories?

A detector combines two component scores, each turned into its *in-taxonomy percentile* (the
share of in-taxonomy validation products that scored lower), so both read on one scale:

- ``far``: how far the product is from the categories, by ``method`` (chosen on validation,
  docs/results.md "Out of taxonomy"): ``knn`` (1 - mean similarity to the ``neighbours`` most
  similar training products in the pooled space of ``ml/knn.py``), ``class_mean`` (1 - the
  similarity to the nearest class mean), or one from the model's logits: ``energy``
  (-T logsumexp(z / T)), ``max_logit`` (-max z), ``msp`` (1 - max softmax(z / T)).
- ``disagree`` (title + photo products only): 1 - sum_c p_title(c) p_photo(c), the chance that
  the title-only and the photo-only predictions of the model differ (a sweater title with a
  flip-flop photo).

The product's ``score`` is the larger percentile and ``reason`` names that component; it is
flagged when ``score > threshold``, the threshold chosen so that at most ``rate`` (5%) of the
in-taxonomy validation products are flagged. The fitted detector is two files of the
checkpoint, listed and hashed in its manifest: ``ood.json`` (method, threshold, settings,
measurements) and ``ood.safetensors`` (the reference vectors and the sorted validation scores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prodcat_django.ml.knn import similarity
from prodcat_django.ml.manifest import CheckpointError

__all__ = [
    "FAR_METHODS",
    "OOD_FILE",
    "OOD_TENSORS",
    "REASONS",
    "OODDetector",
    "Verdict",
    "class_means",
    "disagreement",
    "far_scores",
    "fit_detector",
    "install_detector",
    "load_detector",
    "reference_sample",
]

OOD_FILE = "ood.json"
OOD_TENSORS = "ood.safetensors"
OOD_FORMAT = "prodcat-ood/1"
FAR_METHODS = ("knn", "class_mean", "energy", "max_logit", "msp")
REASONS = {"far": "far from every category", "disagree": "title and photo disagree"}


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    score: float  # in-taxonomy percentile of the strongest component, in [0, 1]
    reason: str  # "" when not flagged


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def far_scores(
    method: str,
    *,
    embedding: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    logits: np.ndarray | None = None,
    temperature: float = 1.0,
    neighbours: int = 10,
) -> np.ndarray:
    """(N,) "far from every category" scores by ``method``; higher = more likely outside."""
    if method in ("knn", "class_mean"):
        if embedding is None or reference is None:
            raise ValueError(f"method {method!r} needs embeddings and reference vectors")
        sims = similarity(embedding, reference)
        k = 1 if method == "class_mean" else min(neighbours, sims.shape[1])
        top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
        return (1.0 - top.mean(axis=1)).astype(np.float64)
    if logits is None:
        raise ValueError(f"method {method!r} needs the model's logits")
    z = np.asarray(logits, dtype=np.float64)
    if method == "energy":
        m = (z / temperature).max(axis=1)
        return -temperature * (m + np.log(np.exp(z / temperature - m[:, None]).sum(axis=1)))
    if method == "max_logit":
        return -z.max(axis=1)
    if method == "msp":
        return 1.0 - _softmax(z, temperature).max(axis=1)
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(FAR_METHODS)}")


def disagreement(
    title_only: np.ndarray, image_only: np.ndarray, temperature: float = 1.0
) -> np.ndarray:
    """(N,) 1 - sum_c p_title(c) p_photo(c): the chance the two single-modality guesses differ."""
    p = _softmax(title_only, temperature)
    q = _softmax(image_only, temperature)
    return 1.0 - (p * q).sum(axis=1)


def _percentile(sorted_reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``sorted_reference`` strictly below each value."""
    if len(sorted_reference) == 0:
        return np.zeros(len(values))
    return np.searchsorted(sorted_reference, values, side="left") / len(sorted_reference)


@dataclass
class OODDetector:
    method: str
    threshold: float
    reference: np.ndarray  # (M, D) pooled training vectors / class means ((0, D) for logits)
    calibration: dict[str, np.ndarray]  # component -> sorted in-taxonomy validation scores
    temperature: float = 1.0
    neighbours: int = 10
    rate: float = 0.05
    embedding_id: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # measurements, the fitting command

    @property
    def uses_disagreement(self) -> bool:
        return "disagree" in self.calibration

    def components(
        self,
        embedding: np.ndarray | None,
        logits: np.ndarray | None,
        *,
        title_only: np.ndarray | None = None,
        image_only: np.ndarray | None = None,
        has_text: np.ndarray | None = None,
        has_image: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Component -> (N,) in-taxonomy percentiles (0 where a component does not apply)."""
        raw = far_scores(
            self.method,
            embedding=embedding,
            reference=self.reference,
            logits=logits,
            temperature=self.temperature,
            neighbours=self.neighbours,
        )
        result = {"far": _percentile(self.calibration["far"], raw)}
        if self.uses_disagreement and title_only is not None and image_only is not None:
            n = len(raw)
            both = np.ones(n, dtype=bool)
            if has_text is not None:
                both &= np.asarray(has_text, dtype=bool)
            if has_image is not None:
                both &= np.asarray(has_image, dtype=bool)
            d = disagreement(title_only, image_only, self.temperature)
            result["disagree"] = np.where(both, _percentile(self.calibration["disagree"], d), 0.0)
        return result

    def verdicts(
        self, embedding: np.ndarray | None, logits: np.ndarray | None, **kwargs: Any
    ) -> list[Verdict]:
        """One verdict per product (see ``components`` for the keyword arguments)."""
        parts = self.components(embedding, logits, **kwargs)
        names = list(parts)
        stacked = np.stack([parts[n] for n in names], axis=1)
        best = stacked.argmax(axis=1)
        scores = stacked.max(axis=1)
        flagged = scores > self.threshold
        return [
            Verdict(bool(f), float(s), REASONS[names[b]] if f else "")
            for f, s, b in zip(flagged, scores, best, strict=True)
        ]

    # -- files -------------------------------------------------------------------------------

    def save(self, checkpoint_dir: str | Path) -> tuple[Path, Path]:
        """Write ``ood.json`` and ``ood.safetensors`` (the caller rewrites the manifest)."""
        from safetensors.numpy import save_file

        root = Path(checkpoint_dir)
        tensors = {"reference": np.ascontiguousarray(self.reference, dtype=np.float16)}
        for name, values in self.calibration.items():
            tensors[f"calibration.{name}"] = np.ascontiguousarray(np.sort(values), dtype=np.float64)
        save_file(tensors, str(root / OOD_TENSORS))
        meta = {
            "format": OOD_FORMAT,
            "method": self.method,
            "threshold": self.threshold,
            "rate": self.rate,
            "temperature": self.temperature,
            "neighbours": self.neighbours,
            "components": sorted(self.calibration),
            "embedding_id": self.embedding_id,
            **self.info,
        }
        (root / OOD_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return root / OOD_FILE, root / OOD_TENSORS


def load_detector(checkpoint_dir: str | Path) -> OODDetector | None:
    """The checkpoint's detector, or None where it has none (an older checkpoint).

    Call it on a verified checkpoint (``verify_checkpoint`` checks both files' hashes).
    """
    root = Path(checkpoint_dir)
    meta_file, tensor_file = root / OOD_FILE, root / OOD_TENSORS
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{meta_file}: not valid JSON ({exc})") from exc
    if meta.get("format") != OOD_FORMAT:
        raise CheckpointError(f"{meta_file}: unsupported format {meta.get('format')!r}")
    try:
        from safetensors.numpy import load_file

        tensors = load_file(str(tensor_file))
    except Exception as exc:  # safetensors raises several kinds
        raise CheckpointError(f"{tensor_file}: not a readable safetensors file ({exc})") from exc
    known = {"format", "method", "threshold", "rate", "temperature", "neighbours", "components"}
    try:
        return OODDetector(
            method=str(meta["method"]),
            threshold=float(meta["threshold"]),
            reference=tensors["reference"].astype(np.float32),
            calibration={c: tensors[f"calibration.{c}"] for c in meta["components"]},
            temperature=float(meta.get("temperature", 1.0)),
            neighbours=int(meta.get("neighbours", 10)),
            rate=float(meta.get("rate", 0.05)),
            embedding_id=str(meta.get("embedding_id", "")),
            info={k: v for k, v in meta.items() if k not in known | {"embedding_id"}},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_file}: incomplete detector ({exc})") from exc


# -- fitting -----------------------------------------------------------------------------------


def class_means(embedding: np.ndarray, labels: np.ndarray, text_dim: int) -> np.ndarray:
    """(C, D) per-label means of the pooled vectors, each half rescaled to its weight's norm."""
    from prodcat_django.ml.knn import pooled_embedding

    embedding = np.asarray(embedding, dtype=np.float32)
    labels = np.asarray(labels)
    text_norm = np.linalg.norm(embedding[:, :text_dim], axis=1).max(initial=0.0)
    weight = float(min(1.0, text_norm**2)) if text_norm > 0 else 0.0
    means = [embedding[labels == c].mean(axis=0) for c in np.unique(labels)]
    stacked = np.stack(means) if means else np.zeros((0, embedding.shape[1]), np.float32)
    return pooled_embedding(stacked[:, :text_dim], stacked[:, text_dim:], text_weight=weight)


def reference_sample(
    embedding: np.ndarray, labels: np.ndarray, per_class: int, seed: int = 0
) -> np.ndarray:
    """At most ``per_class`` training vectors of each label (seeded), the kNN method's reference."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    rows: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rows.extend(rng.choice(idx, size=min(per_class, len(idx)), replace=False).tolist())
    return np.asarray(embedding, dtype=np.float32)[sorted(rows)]


def fit_detector(
    method: str,
    *,
    reference: np.ndarray,
    val_embedding: np.ndarray | None,
    val_logits: np.ndarray | None,
    val_title_only: np.ndarray | None = None,
    val_image_only: np.ndarray | None = None,
    val_has_text: np.ndarray | None = None,
    val_has_image: np.ndarray | None = None,
    temperature: float = 1.0,
    neighbours: int = 10,
    rate: float = 0.05,
    embedding_id: str = "",
    info: dict[str, Any] | None = None,
) -> OODDetector:
    """Calibrate on in-taxonomy validation products: at most ``rate`` of them end up flagged.

    ``val_title_only`` / ``val_image_only``: the model's logits with the photo / the title
    hidden; given, the detector also flags a title and photo that disagree.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be within (0, 1), got {rate}")
    far = far_scores(
        method,
        embedding=val_embedding,
        reference=reference,
        logits=val_logits,
        temperature=temperature,
        neighbours=neighbours,
    )
    if len(far) == 0:
        raise ValueError("no validation products to calibrate on")
    calibration = {"far": np.sort(far)}
    if val_title_only is not None and val_image_only is not None:
        both = np.ones(len(far), dtype=bool)
        for flags in (val_has_text, val_has_image):
            if flags is not None:
                both &= np.asarray(flags, dtype=bool)
        if both.any():
            d = disagreement(val_title_only[both], val_image_only[both], temperature)
            calibration["disagree"] = np.sort(d)
    detector = OODDetector(
        method=method,
        threshold=1.0,
        reference=np.asarray(reference, dtype=np.float32),
        calibration=calibration,
        temperature=temperature,
        neighbours=neighbours,
        rate=rate,
        embedding_id=embedding_id,
        info=dict(info or {}),
    )
    parts = detector.components(
        val_embedding,
        val_logits,
        title_only=val_title_only,
        image_only=val_image_only,
        has_text=val_has_text,
        has_image=val_has_image,
    )
    combined = np.max(np.stack(list(parts.values()), axis=1), axis=1)
    detector.threshold = float(np.quantile(combined, 1.0 - rate, method="higher"))
    detector.info["val_flagged_rate"] = float((combined > detector.threshold).mean())
    detector.info["val_n"] = len(combined)
    return detector


def install_detector(checkpoint_dir: str | Path, detector: OODDetector) -> Path:
    """Write the detector's files into a checkpoint and re-hash its manifest (other fields kept)."""
    from prodcat_django.ml.manifest import write_manifest

    root = Path(checkpoint_dir)
    manifest_file = root / "manifest.json"
    try:
        fields = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{manifest_file}: cannot be read ({exc})") from exc
    detector.save(root)
    fields.pop("files", None)
    fields.pop("format", None)
    fields["out_of_taxonomy"] = {
        "method": detector.method,
        "threshold": round(detector.threshold, 6),
        "components": sorted(detector.calibration),
        "val_flagged_rate": detector.info.get("val_flagged_rate"),
    }
    return write_manifest(root, fields)
