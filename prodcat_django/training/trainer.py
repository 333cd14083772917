"""Training a new version from the shop's dataset, and the promotion gate.

:func:`train_new_version` builds the dataset (:mod:`~prodcat_django.training.dataset`), encodes
it through the shared feature cache (entries keyed by encoder and input bytes, so a retrain
re-encodes only products whose title or image is new), trains with :mod:`prodcat_django.ml`'s
training loop on the cached outputs, calibrates on the validation part, evaluates on the held-out
part, stores the checkpoint as a new version and runs the gate: the version becomes active only
if, on the same held-out products, its accuracy and its auto-accept precision are at least the
active version's. Otherwise it stays a candidate with the comparison recorded (``force``
activates it anyway).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import models

from prodcat_django.adapters import ProductAdapter
from prodcat_django.conf import prodcat_settings
from prodcat_django.models import ModelVersion
from prodcat_django.training import store
from prodcat_django.training.dataset import Dataset, Example, build_dataset, stage_images
from prodcat_django.training.labels import LabelResolver, category_label, label_map_for

Say = Callable[[str], object]

#: Encoders of a training run: the pretrained ones, or tiny random ones (fast tests).
ENCODERS = ("pretrained", "tiny-random")
#: The model trained on tiny random encoders: their small features need no more.
TINY_OPTIONS = {"width": 32, "heads": 2, "epochs": 8, "patience": 3, "aux_heads": False}


@dataclass
class TrainOutcome:
    version: ModelVersion
    activated: bool
    comparison: dict[str, Any]
    metrics: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    title_only: bool = False


def version_name(spec: ProductAdapter) -> str:
    return "shop-" + re.sub(r"[^a-z0-9]+", "-", spec.label.lower()).strip("-")


def next_version(name: str) -> str:
    numbers = [
        int(v)
        for v in ModelVersion.objects.filter(name=name).values_list("version", flat=True)
        if v.isdigit()
    ]
    return str(max(numbers, default=0) + 1)


def train_new_version(
    spec: ProductAdapter,
    *,
    min_per_category: int | None = None,
    force: bool = False,
    activate: bool = True,
    user: Any = None,
    encoders: str = "pretrained",
    say: Say = print,
    progress: bool = False,
    dataset: Dataset | None = None,
    train_options: dict[str, Any] | None = None,
) -> TrainOutcome:
    """Train, evaluate and store a new version of ``spec``'s model; see the module docstring.

    ``progress``: tqdm bars (rate, time left) for a terminal; ``say`` gets plain status lines
    either way. ``train_options``: fields of ``prodcat_django.ml.train.TrainOptions`` to
    override. Raises :class:`~prodcat_django.training.dataset.DatasetError` for a catalogue that
    cannot be trained on.
    """
    started = time.perf_counter()
    if encoders not in ENCODERS:
        raise ValueError(f"encoders must be one of {', '.join(ENCODERS)}")
    if dataset is None:
        minimum = int(min_per_category or prodcat_settings.MIN_PER_CATEGORY)
        say(f"reading the products of {spec.label}")
        dataset = build_dataset(spec, min_per_category=minimum)
    for line in dataset.describe():
        say(line)
    title_only = not dataset.has_images
    if title_only:
        say(
            "no product has an image: training a title-only model (add photos and retrain to "
            "use them)"
        )
    _setup_torch()
    name = version_name(spec)
    version = next_version(name)
    work = Path(tempfile.mkdtemp(prefix="prodcat-train-"))
    seconds: dict[str, float] = {"read": round(time.perf_counter() - started, 1)}
    try:
        images = stage_images(dataset.examples, work / "images")
        products = {s: _ml_products(dataset.split(s), images) for s in ("train", "val", "test")}
        labels = [str(c.pk) for c in dataset.categories]
        text_spec, image_spec = _encoder_specs(encoders)
        cache = _feature_cache(text_spec, image_spec, progress)
        from prodcat_django.ml.train import encode_split

        t0 = time.perf_counter()
        say("encoding titles and images (cached outputs are reused)")
        train_split = encode_split(products["train"], cache, labels, ["title"], ("orig", "flip"))
        val_split = encode_split(products["val"] or products["train"], cache, labels, ["title"])
        seconds["encode"] = round(time.perf_counter() - t0, 1)
        encoded = dict(cache.encoded)  # the rest of the train/val inputs came from the cache
        say(
            f"encoded {encoded.get('titles', 0)} titles and "
            f"{encoded.get('images_orig', 0)} images ({encoded.get('images_flip', 0)} mirrored) "
            f"of {len(products['train']) + len(products['val'])} products; the rest were cached"
        )

        t0 = time.perf_counter()
        say(f"training on {len(products['train'])} products, {len(labels)} categories")
        result, options = _fit(
            train_split,
            val_split,
            labels,
            text_spec,
            image_spec,
            title_only,
            progress,
            train_options or (TINY_OPTIONS if encoders == "tiny-random" else {}),
            say,
        )
        seconds["train"] = round(time.perf_counter() - t0, 1)
        for entry in result.history:
            if "epoch" in entry:  # a single model; an ensemble lists its members' histories
                shown = " ".join(f"{k}={v:.3f}" for k, v in entry["val"].items())
                say(f"epoch {entry['epoch']}: loss {entry['loss']:.4f} validation {shown}")
        say(
            f"best epoch {result.best_epoch}; temperature {result.temperature:.3f}, auto-accept "
            f"threshold {'off' if result.threshold is None else f'{result.threshold:.3f}'}"
        )

        t0 = time.perf_counter()
        test_examples = dataset.split("test")
        metrics = _evaluate(result, options, val_split, products, cache, labels, dataset)
        checkpoint = _save(work, name, version, result, options, labels, metrics, dataset)
        if not title_only:  # a shop's model abstains too (issue 10): fit its detector on val
            _attach_detector(checkpoint, result, train_split, val_split, image_spec, cache)
        say(f"evaluating against the active version on {len(test_examples)} held-out products")
        comparison = compare_on_held_out(
            checkpoint, test_examples, images, spec.category_model, dataset, progress
        )
        seconds["evaluate"] = round(time.perf_counter() - t0, 1)
        seconds["total"] = round(time.perf_counter() - started, 1)
        metrics["seconds"] = seconds
        metrics["encoded"] = encoded
        row = store.add_version(
            checkpoint,
            label_map=label_map_for(dataset.categories),
            product_model=spec.label,
            metrics=metrics,
            comparison=comparison,
            trained_by=user,
            dataset_fingerprint=dataset.fingerprint(),
            dataset_size=len(dataset.examples),
            note="title-only (no product images)" if title_only else "",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for line in describe_comparison(comparison):
        say(line)
    activated = False
    if activate and (comparison["passed"] or force):
        store.activate(row)
        activated = True
        say(
            f"{row.name} {row.version} is now active"
            + (" (--force)" if not comparison["passed"] else "")
        )
    else:
        say(
            f"{row.name} {row.version} stays a candidate"
            + ("" if activate else " (not activated: --no-activate)")
            + "; activate it with manage.py prodcat_models activate "
            + f"{row.name}:{row.version}"
        )
    return TrainOutcome(row, activated, comparison, metrics, seconds, title_only)


def _setup_torch() -> None:
    import torch

    # The shop's worker box is small; PRODCAT_THREADS raises it on a bigger one.
    torch.set_num_threads(int(os.environ.get("PRODCAT_THREADS", "2")))


def _device() -> str:
    import torch

    configured = prodcat_settings.DEVICE
    return configured or ("cuda" if torch.cuda.is_available() else "cpu")


def _encoder_specs(encoders: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if encoders == "tiny-random":
        from prodcat_django.ml.testing import tiny_config

        tiny = tiny_config(2)
        return tiny["text_encoder"], tiny["image_encoder"]
    from prodcat_django.ml.encoders import image_encoder_spec, text_encoder_spec

    return text_encoder_spec("minilm"), image_encoder_spec("efficientnet-lite0")


def _feature_cache(text_spec: dict, image_spec: dict, progress: bool) -> Any:
    from prodcat_django.ml.encoders import build_image_encoder, build_text_encoder
    from prodcat_django.ml.features import FeatureCache

    device, backend = _device(), prodcat_settings.ENCODER_BACKEND
    return FeatureCache(
        build_text_encoder(text_spec, backend=backend, device=device).to(device),
        build_image_encoder(image_spec, backend=backend, device=device).to(device),
        progress=progress,
    )


def _ml_products(examples: Sequence[Example], images: dict[str, Path]) -> list[Any]:
    from prodcat_django.ml.data import Product

    return [
        Product(
            id=e.product_pk,
            label=e.category_pk,
            titles={"title": e.title},
            image=images.get(e.product_pk),
        )
        for e in examples
    ]


def _fit(
    train_split: Any,
    val_split: Any,
    labels: list[str],
    text_spec: dict,
    image_spec: dict,
    title_only: bool,
    progress: bool,
    overrides: dict[str, Any],
    say: Say,
) -> tuple[Any, Any]:
    from prodcat_django.ml.train import TrainOptions, auto_fit

    # The ML package's improved recipe, its hyperparameters chosen on validation within
    # TRAIN_BUDGET seconds (no shop tunes them by hand); overrides make it one fixed trial.
    base = TrainOptions(
        **{
            "epochs": 12,
            "aux_heads": not title_only,
            "augment_views": 0,
            "fusion": "text" if title_only else "attention",
            "no_image": title_only,
            "terse_column": None,
            **overrides,
        }
    )
    result = auto_fit(
        train_split,
        val_split,
        labels,
        budget_s=float(prodcat_settings.TRAIN_BUDGET),
        base=base,
        grid=[{}] if overrides else None,
        text_spec=text_spec,
        image_spec=image_spec,
        device=_device(),
        progress=progress,
        log=say,
    )
    return result, result.options or base


def _evaluate(
    result: Any,
    options: Any,
    val_split: Any,
    products: dict[str, list[Any]],
    cache: Any,
    labels: list[str],
    dataset: Dataset,
) -> dict[str, Any]:
    from prodcat_django.ml.evaluation import evaluate_split, summary
    from prodcat_django.ml.probe import component_accuracies
    from prodcat_django.ml.train import conditions, encode_split

    names = {str(c.pk): category_label(c) for c in dataset.categories}
    out: dict[str, Any] = {"val": {}, "test": {}, "confusion_pairs": []}
    splits = {"val": (val_split, products["val"] or products["train"])}
    if products["test"]:
        splits["test"] = (
            encode_split(products["test"], cache, labels, ["title"]),
            products["test"],
        )
    for split_name, (split, items) in splits.items():
        for condition, (column, use_image) in conditions(split, options).items():
            report = evaluate_split(
                result.model,
                split,
                [p.label for p in items],
                labels,
                result.temperature,
                result.threshold,
                column=column,
                use_image=use_image,
                device=_device(),
            )
            out[split_name][condition] = summary(report)
            if split_name == "test" and condition == "full":
                out["confusion_pairs"] = _confusion_pairs(report["confusion"], names)
        # With a probe head: the probe alone and the trained model alone, on the same products.
        parts = component_accuracies(result.model, split, options, _device())
        if parts:
            out.setdefault("component_accuracy", {})[split_name] = parts
    out["dataset"] = {
        "products": len(dataset.examples),
        "categories": len(dataset.categories),
        "splits": {s: len(dataset.split(s)) for s in ("train", "val", "test")},
        "left_out": dataset.left_out,
        "with_image": sum(e.image is not None for e in dataset.examples),
    }
    return out


def _confusion_pairs(confusion: dict, names: dict[str, str], top: int = 10) -> list[dict]:
    labels, matrix = confusion["labels"], confusion["matrix"]
    pairs = [
        {
            "true": names.get(labels[i], labels[i]),
            "predicted": names.get(labels[j], labels[j]),
            "n": matrix[i][j],
        }
        for i in range(len(labels))
        for j in range(len(labels))
        if i != j and matrix[i][j]
    ]
    return sorted(pairs, key=lambda p: -p["n"])[:top]


def _save(
    work: Path,
    name: str,
    version: str,
    result: Any,
    options: Any,
    labels: list[str],
    metrics: dict[str, Any],
    dataset: Dataset,
) -> Path:
    from prodcat_django.ml.checkpoint import save_checkpoint
    from prodcat_django.ml.train import options_dict

    out = work / "checkpoint" / name / version
    config = {"name": name, "version": version, **result.config}
    return save_checkpoint(
        out,
        result.model,
        config,
        labels,
        {
            "temperature": round(result.temperature, 6),
            "threshold": None if result.threshold is None else round(result.threshold, 6),
            "metrics": {"val": metrics["val"], "test": metrics["test"]},
            "training": {
                "command": "manage.py prodcat_train",
                "product_model": dataset.spec.label,
                "data_fingerprint": dataset.fingerprint(),
                "data_fingerprint_covers": "product pks, titles, image bytes, categories, splits",
                "options": options_dict(options),
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "seconds": round(result.seconds, 1),
                "history": result.history,
            },
        },
    )


def _attach_detector(
    checkpoint: Path, result: Any, train_split: Any, val_split: Any, image_spec: dict, cache: Any
) -> None:
    """The out-of-taxonomy detector (``ml/ood.py``), fitted as ``ml train`` fits it: threshold
    calibrated so at most 5% of this shop's validation products are flagged."""
    from prodcat_django.ml.abstain import attach_detector

    attach_detector(
        checkpoint,
        result.model,
        train_split,
        val_split,
        "title",
        image_spec,
        result.temperature,
        (cache.text_encoder.encoder_id, cache.image_encoder.encoder_id),
        device=_device(),
        info={"command": "manage.py prodcat_train"},
    )


# ── the promotion gate ──────────────────────────────────────────────────────────────────────


def score_checkpoint(
    path: Path,
    version: ModelVersion | None,
    examples: Sequence[Example],
    images: dict[str, Path],
    category_model: type[models.Model],
    progress: bool = False,
) -> dict[str, Any]:
    """Accuracy and auto-accept precision/coverage of the checkpoint at ``path`` on
    ``examples`` (title and image, as the worker sees them), its labels mapped to shop
    categories the way the worker maps them."""
    import torch

    from prodcat_django.ml.checkpoint import load_model
    from prodcat_django.ml.train import encode_split, predict_logits

    model, info = load_model(path, _device())
    cache = _feature_cache(info.config["text_encoder"], info.config["image_encoder"], progress)
    split = encode_split(_ml_products(examples, images), cache, info.labels, ["title"])
    logits = predict_logits(model, split, "title", model.uses_image(), device=_device())
    probs = torch.softmax(logits / info.temperature, dim=-1)
    scores, index = probs.max(1)
    resolver = LabelResolver(version, info.name, category_model, record=False)
    correct = []
    for e, i in zip(examples, index.tolist(), strict=True):
        category = resolver.category(info.labels[i])
        correct.append(category is not None and str(category.pk) == e.category_pk)
    n = len(examples)
    accepted = [
        ok
        for ok, s in zip(correct, scores.tolist(), strict=True)
        if info.threshold is not None and s >= info.threshold
    ]
    return {
        "name": info.name,
        "version": info.version,
        "n": n,
        "accuracy": round(sum(correct) / n, 5) if n else None,
        "auto_accept_threshold": info.threshold,
        "auto_accept_precision": round(sum(accepted) / len(accepted), 5) if accepted else None,
        "auto_accept_coverage": round(len(accepted) / n, 5) if n else 0.0,
    }


def compare_on_held_out(
    candidate_path: Path,
    examples: Sequence[Example],
    images: dict[str, Path],
    category_model: type[models.Model],
    dataset: Dataset,
    progress: bool = False,
) -> dict[str, Any]:
    """The gate's verdict: the candidate against the active version on the same products."""
    candidate = score_checkpoint(
        candidate_path,
        _PendingVersion(label_map_for(dataset.categories)),
        examples,
        images,
        category_model,
        progress,
    )
    if not examples:
        return {
            "passed": False,
            "reasons": ["no held-out products to compare on: add products, or use --force"],
            "candidate": candidate,
            "baseline": None,
        }
    active = store.active_version()
    try:
        baseline_path = store.local_checkpoint(active) if active else store.builtin_checkpoint()
        baseline = score_checkpoint(
            baseline_path, active, examples, images, category_model, progress
        )
    except Exception as exc:  # a baseline that cannot load cannot block the shop's model
        return {
            "passed": True,
            "reasons": [f"the active version could not be evaluated ({exc}); no baseline"],
            "candidate": candidate,
            "baseline": None,
        }
    reasons = []
    if candidate["accuracy"] < baseline["accuracy"]:
        reasons.append(
            f"accuracy {candidate['accuracy']:.2%} is below the active version's "
            f"{baseline['accuracy']:.2%}"
        )
    new_p, old_p = candidate["auto_accept_precision"], baseline["auto_accept_precision"]
    if new_p is not None and old_p is not None and new_p < old_p:
        reasons.append(
            f"auto-accept precision {new_p:.2%} is below the active version's {old_p:.2%}"
        )
    return {"passed": not reasons, "reasons": reasons, "candidate": candidate, "baseline": baseline}


class _PendingVersion:
    """What :class:`LabelResolver` needs of a version not stored yet: its label map."""

    builtin = False

    def __init__(self, label_map: dict[str, dict[str, Any]]) -> None:
        self.label_map = label_map


def describe_comparison(comparison: dict[str, Any]) -> list[str]:
    """The gate's verdict as lines for the command's output (and the admin page)."""

    def fmt(side: dict[str, Any] | None) -> str:
        if not side:
            return "none"
        precision = side["auto_accept_precision"]
        return (
            f"{side['name']} {side['version']}: accuracy "
            f"{'n/a' if side['accuracy'] is None else format(side['accuracy'], '.2%')}, "
            f"auto-accept precision {'n/a' if precision is None else format(precision, '.2%')} "
            f"at coverage {side['auto_accept_coverage']:.0%}"
        )

    n = (comparison.get("candidate") or {}).get("n", 0)
    lines = [
        f"held-out comparison on {n} products:",
        f"  new:    {fmt(comparison.get('candidate'))}",
        f"  active: {fmt(comparison.get('baseline'))}",
    ]
    if comparison.get("passed"):
        lines.append(
            "gate: passed" + (f" ({comparison['reasons'][0]})" if comparison.get("reasons") else "")
        )
    else:
        lines.append("gate: not passed: " + "; ".join(comparison.get("reasons", [])))
    return lines
