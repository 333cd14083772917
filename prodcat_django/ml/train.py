"""One training loop for every fusion, on cached encoder outputs.

Each epoch every training product is seen once, with (seeded) random choices: the full or the
terse title (where the CSV has ``title_terse``), one of the cached image views (as is, mirrored,
``aug<k>`` crop + colour draws), and modality dropout (no image, or no title) so the model holds
up on catalogues with missing photos and brand-only titles. Early stopping keeps the epoch with
the best mean validation accuracy over the evaluation conditions (full title, terse title, image
only, title only).

Entry points: ``train`` (one model), ``train_ensemble`` (several seeds, log-probabilities
averaged) and ``auto_fit`` (a small grid within a time budget, every choice by validation
score), which ``manage.py prodcat_train`` calls because no shop tunes hyperparameters by hand.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from prodcat_django.ml.calibration import auto_accept_threshold, fit_temperature
from prodcat_django.ml.data import Product
from prodcat_django.ml.encoders import image_encoder_spec, text_encoder_spec
from prodcat_django.ml.features import FeatureCache, stack_images, stack_text
from prodcat_django.ml.model import FusionEnsemble, FusionModel, ensemble_of


@dataclass
class TrainOptions:
    fusion: str = "attention"
    width: int = 256
    heads: int = 4
    layers: int = 1
    dropout: float = 0.1
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    tail_lr: float = 1e-4  # the pretrained image tail moves slower than the fresh head
    tune_tail: bool = True
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    patience: int = 5
    seed: int = 0
    title_column: str = "title"
    terse_column: str | None = "title_terse"  # mixed in when the CSV has it
    terse_prob: float = 0.5
    drop_image: float = 0.15
    drop_text: float = 0.15
    flip: bool = True
    no_image: bool = False
    no_title: bool = False
    weights_dtype: str = "float16"
    calibrate_on: tuple[str, ...] = ("full", "terse")
    # Joint image-only and title-only linear heads, ensembled with the attention head (their
    # weight in the ensemble is chosen on validation from aux_weights after training).
    aux_heads: bool = False
    aux_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    augment_views: int = 0  # cached crop + colour views aug1..augK mixed into training


@dataclass
class EncodedSplit:
    """A split's cached features, stacked: fp16 tensors ready to index by batch."""

    labels: torch.Tensor  # (N,) long, -1 for a label the model does not know
    texts: dict[str, tuple[torch.Tensor, torch.Tensor]]  # column -> (N, L, D), (N, L) mask
    images: dict[str, tuple[torch.Tensor, torch.Tensor]]  # view -> (N, C, 7, 7), (N,) present

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class TrainResult:
    model: FusionModel | FusionEnsemble
    config: dict[str, Any]
    labels: list[str]
    temperature: float
    threshold: float | None
    val: dict[str, dict[str, float]]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    score: float = 0.0  # the validation selection score of the returned model
    trials: list[dict[str, Any]] = field(default_factory=list)  # auto_fit: every tried config
    options: TrainOptions | None = None  # auto_fit: the chosen options


def encode_split(
    products: Sequence[Product],
    cache: FeatureCache,
    labels: Sequence[str],
    text_columns: Sequence[str],
    views: Sequence[str] = ("orig",),
    missing_images: str = "error",
) -> EncodedSplit:
    index = {label: i for i, label in enumerate(labels)}
    y = torch.tensor([index.get(p.label, -1) for p in products], dtype=torch.long)
    texts = {}
    for column in text_columns:
        states = cache.text([p.title(column) for p in products])
        length = max(1, max(s.shape[0] for s in states))
        tensor, mask = stack_text(states, length, cache.text_encoder.dim)
        texts[column] = (tensor.half(), mask)
    images = {}
    channels = cache.image_encoder.channels
    for view in views:
        maps = cache.images([p.image for p in products], view, missing=missing_images)
        tensor, present = stack_images(maps, (channels, 7, 7))
        images[view] = (tensor.half(), present)
    return EncodedSplit(y, texts, images)


def image_views(options: TrainOptions) -> tuple[str, ...]:
    """The cached image views training draws from (encode the training split with these)."""
    return (
        "orig",
        *(("flip",) if options.flip else ()),
        *(f"aug{k}" for k in range(1, options.augment_views + 1)),
    )


def build_config(options: TrainOptions, labels: Sequence[str], text_spec=None, image_spec=None):
    model: dict[str, Any] = {
        "fusion": options.fusion,
        "width": options.width,
        "heads": options.heads,
        "layers": options.layers,
        "dropout": options.dropout,
        "num_labels": len(labels),
    }
    if options.aux_heads and options.fusion == "attention":
        model["aux_heads"] = True
    return {
        "text_encoder": text_spec or text_encoder_spec("minilm"),
        "image_encoder": image_spec or image_encoder_spec("efficientnet-lite0"),
        "model": model,
        "preprocessing": {
            "title_column": options.title_column,
            "empty_title": "no text tokens (the learned null token stands in)",
            "missing_image": "no patches (the learned null token stands in)",
        },
        "weights_dtype": options.weights_dtype,
    }


def _pad_to(tensor: torch.Tensor, mask: torch.Tensor, length: int):
    extra = length - tensor.shape[1]
    if extra <= 0:
        return tensor, mask
    return F.pad(tensor, (0, 0, 0, extra)), F.pad(mask, (0, extra))


@torch.no_grad()
def predict_logits(
    model: FusionModel,
    split: EncodedSplit,
    column: str | None,
    use_image: bool,
    batch_size: int = 256,
    device: str = "cpu",
    image_share: list[float] | None = None,
) -> torch.Tensor:
    """Logits for a split under one condition: text column (None = no title), image or not.

    ``image_share`` (attention models): receives, per product, the share of the pooling
    attention that falls on image patches rather than title tokens (null tokens left out).
    """
    model.eval()
    out = []
    for start in range(0, len(split), batch_size):
        sl = slice(start, start + batch_size)
        if column is not None:
            text, mask = split.texts[column][0][sl].float(), split.texts[column][1][sl]
        else:
            text = torch.zeros(len(split.labels[sl]), 1, model.text_dim)
            mask = torch.zeros(text.shape[:2], dtype=torch.bool)
        image, present = split.images["orig"][0][sl].float(), split.images["orig"][1][sl]
        if not use_image:
            present = torch.zeros_like(present)
        result = model(text.to(device), mask.to(device), image.to(device), present.to(device))
        out.append(result.logits.cpu())
        if image_share is not None and result.pool_weights is not None:
            w = result.pool_weights.float().cpu()
            length = text.shape[1]
            on_text = w[:, 1 : 1 + length].sum(1)
            on_image = w[:, length + 2 :].sum(1)
            image_share.extend((on_image / (on_text + on_image).clamp(min=1e-12)).tolist())
    return torch.cat(out)


def conditions(split: EncodedSplit, options: TrainOptions) -> dict[str, tuple[str | None, bool]]:
    """Evaluation conditions: name -> (text column or None, use image)."""
    result: dict[str, tuple[str | None, bool]] = {}
    if not options.no_title:
        result["full"] = (options.title_column, not options.no_image)
        if options.terse_column and options.terse_column in split.texts:
            result["terse"] = (options.terse_column, not options.no_image)
    if not options.no_image:
        result["image_only"] = (None, True)
    if not options.no_title:
        result["title_only"] = (options.title_column, False)
    return result


def _selection_score(accuracies: dict[str, float]) -> float:
    """Mean validation accuracy over every condition: each must hold up, not just the mean."""
    return float(np.mean(list(accuracies.values())))


def _val_accuracies(model, split: EncodedSplit, options: TrainOptions, device: str):
    return {
        name: float(
            (predict_logits(model, split, col, img, device=device).argmax(1) == split.labels)
            .float()
            .mean()
        )
        for name, (col, img) in conditions(split, options).items()
    }


def _loss(out, labels, mask, present, label_smoothing: float) -> torch.Tensor:
    """Cross-entropy of the output, or of each ensemble member on the rows it sees."""
    if out.members is None:
        return F.cross_entropy(out.logits, labels, label_smoothing=label_smoothing)
    loss = F.cross_entropy(out.members["main"], labels, label_smoothing=label_smoothing)
    for name, rows in (("image", present), ("text", mask.any(1))):
        if rows.any():
            loss = loss + F.cross_entropy(
                out.members[name][rows], labels[rows], label_smoothing=label_smoothing
            )
    return loss


def train(
    options: TrainOptions,
    train_split: EncodedSplit,
    val_split: EncodedSplit,
    labels: Sequence[str],
    *,
    text_spec: dict | None = None,
    image_spec: dict | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> TrainResult:
    started = time.perf_counter()
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    config = build_config(options, labels, text_spec, image_spec)
    model = FusionModel(config, pretrained_tail=True).to(device)
    tail_params = list(model.image_tail.parameters()) if model.image_tail is not None else []
    if not (options.tune_tail and model.uses_image()):
        for p in tail_params:
            p.requires_grad_(False)
    tail_ids = {id(p) for p in tail_params}
    head_params = [p for p in model.parameters() if id(p) not in tail_ids]
    groups = [{"params": head_params, "lr": options.lr}]
    if options.tune_tail and model.uses_image():
        groups.append({"params": tail_params, "lr": options.tail_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=options.weight_decay)
    n = len(train_split)
    steps_per_epoch = math.ceil(n / options.batch_size)
    total = steps_per_epoch * options.epochs
    warmup = max(1, int(options.warmup_epochs * steps_per_epoch))

    def schedule(step: int) -> float:  # linear warm-up, then cosine to zero
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    title = train_split.texts[options.title_column]
    terse_col = options.terse_column if options.terse_column in train_split.texts else None
    length = max(t[0].shape[1] for t in train_split.texts.values())
    title = _pad_to(*title, length)
    terse = _pad_to(*train_split.texts[terse_col], length) if terse_col else None
    views = [v for v in image_views(options) if v in train_split.images]
    # A missing mirrored view is skipped, as before; requested crop + colour views must be there.
    missing_views = sorted(v for v in set(image_views(options)) - set(views) if v != "flip")
    if missing_views:
        raise ValueError(f"training split lacks the image view(s) {', '.join(missing_views)}")
    known = train_split.labels >= 0
    if not known.all():
        raise ValueError("training labels must all be in the label list")

    history: list[dict[str, Any]] = []
    best_score, best_state, best_epoch, stale = -1.0, None, 0, 0
    for epoch in range(1, options.epochs + 1):
        model.train()
        order = rng.permutation(n)
        use_terse = rng.random(n) < (options.terse_prob if terse is not None else 0.0)
        view_of = rng.integers(0, len(views), n)  # one cached view per product this epoch
        r = rng.random(n)
        drop_image = (r < options.drop_image) | options.no_image
        drop_text = ((r >= options.drop_image) & (r < options.drop_image + options.drop_text)) | (
            options.no_title
        )
        losses = []
        bar = tqdm(
            range(0, n, options.batch_size),
            desc=f"epoch {epoch}/{options.epochs}",
            unit="batch",
            disable=not progress,
            leave=False,
        )
        for start in bar:
            idx = torch.from_numpy(order[start : start + options.batch_size])
            choose_terse = torch.from_numpy(use_terse)[idx]
            text, mask = title[0][idx].float(), title[1][idx].clone()
            if terse is not None and choose_terse.any():
                text[choose_terse] = terse[0][idx][choose_terse].float()
                mask[choose_terse] = terse[1][idx][choose_terse]
            image, present = (
                train_split.images["orig"][0][idx].float(),
                train_split.images["orig"][1][idx].clone(),
            )
            chosen = torch.from_numpy(view_of)[idx]
            for v in range(1, len(views)):
                rows = chosen == v
                if rows.any():
                    image[rows] = train_split.images[views[v]][0][idx][rows].float()
            mask[torch.from_numpy(drop_text)[idx]] = False
            present[torch.from_numpy(drop_image)[idx]] = False
            mask, present = mask.to(device), present.to(device)
            out = model(text.to(device), mask, image.to(device), present)
            loss = _loss(
                out, train_split.labels[idx].to(device), mask, present, options.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        accuracies = _val_accuracies(model, val_split, options, device)
        score = _selection_score(accuracies)
        history.append(
            {"epoch": epoch, "loss": float(np.mean(losses)), "val": accuracies, "score": score}
        )
        if progress:
            shown = " ".join(f"{k}={v:.4f}" for k, v in accuracies.items())
            tqdm.write(f"epoch {epoch}: loss {np.mean(losses):.4f} val {shown} score {score:.4f}")
        if score > best_score:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= options.patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    if hasattr(model, "aux_image"):
        # The aux heads' weight in the ensemble: the best on validation (0 = attention alone).
        by_weight = {}
        for weight in options.aux_weights:
            model.aux_weight.fill_(weight)
            by_weight[weight] = _selection_score(_val_accuracies(model, val_split, options, device))
        model.aux_weight.fill_(max(by_weight, key=lambda w: (by_weight[w], -w)))
        history.append({"aux_weight_scores": {str(k): v for k, v in by_weight.items()}})
    result = calibrate(model, config, labels, val_split, options, device)
    result.history, result.best_epoch, result.options = history, best_epoch, options
    result.seconds = time.perf_counter() - started
    return result


def calibrate(
    model: FusionModel | FusionEnsemble,
    config: dict[str, Any],
    labels: Sequence[str],
    val_split: EncodedSplit,
    options: TrainOptions,
    device: str = "cpu",
) -> TrainResult:
    """Temperature and auto-accept threshold on validation, and the validation summary."""
    val_conditions = conditions(val_split, options)
    # Calibrate on validation: one temperature for the conditions named in calibrate_on.
    val_logits = {
        name: predict_logits(model, val_split, col, img, device=device)
        for name, (col, img) in val_conditions.items()
    }
    cal = [name for name in options.calibrate_on if name in val_logits] or list(val_logits)[:1]
    logits = torch.cat([val_logits[name] for name in cal])
    targets = torch.cat([val_split.labels] * len(cal))
    keep = targets >= 0
    temperature = fit_temperature(logits[keep], targets[keep])
    probs = torch.softmax(logits[keep] / temperature, dim=-1)
    top, pred = probs.max(1)
    threshold = auto_accept_threshold(top.numpy(), (pred == targets[keep]).numpy())
    val_summary = {}
    for name, lg in val_logits.items():
        p = torch.softmax(lg / temperature, dim=-1)
        pr = p.argmax(1)
        val_summary[name] = {"accuracy": float((pr == val_split.labels).float().mean())}
    return TrainResult(
        model=model,
        config=config,
        labels=list(labels),
        temperature=temperature,
        threshold=threshold,
        val=val_summary,
        score=_selection_score({k: v["accuracy"] for k, v in val_summary.items()}),
    )


def options_dict(options: TrainOptions) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items()}


def train_ensemble(
    options: TrainOptions,
    train_split: EncodedSplit,
    val_split: EncodedSplit,
    labels: Sequence[str],
    *,
    seeds: Sequence[int],
    members: Sequence[TrainResult] = (),
    text_spec: dict | None = None,
    image_spec: dict | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> TrainResult:
    """Train one model per seed (reusing already trained ``members``) and average them."""
    started = time.perf_counter()
    trained = list(members)
    for seed in seeds[len(trained) :]:
        trained.append(
            train(
                replace(options, seed=seed),
                train_split,
                val_split,
                labels,
                text_spec=text_spec,
                image_spec=image_spec,
                device=device,
                progress=progress,
            )
        )
    if len(trained) == 1:
        return trained[0]
    ensemble, config = ensemble_of(trained[0].config, [r.model for r in trained])
    result = calibrate(ensemble.to(device), config, labels, val_split, options, device)
    result.history = [
        {"member_seed": s, "history": r.history} for s, r in zip(seeds, trained, strict=True)
    ]
    result.best_epoch = trained[0].best_epoch
    result.seconds = sum(r.seconds for r in trained[len(members) :]) + (
        time.perf_counter() - started
    )
    return result


# The default auto_fit grid, most promising first: each entry overrides the base options.
AUTO_GRID: tuple[dict[str, Any], ...] = (
    {},
    {"layers": 2},
    {"epochs": 24, "patience": 8},
    {"tune_tail": False},
    {"width": 128},
)


def auto_fit(
    train_split: EncodedSplit,
    val_split: EncodedSplit,
    labels: Sequence[str],
    *,
    budget_s: float = 3600.0,
    base: TrainOptions | None = None,
    grid: Sequence[dict[str, Any]] | None = None,
    max_seeds: int = 3,
    text_spec: dict | None = None,
    image_spec: dict | None = None,
    device: str = "cpu",
    progress: bool = True,
    log=None,
    probe_head: bool = True,
) -> TrainResult:
    """Choose the recipe on validation within a time budget, then average seeds if it pays.

    Tries ``grid`` (default ``AUTO_GRID``; entries override ``base``, whose default is the
    improved recipe: attention, aux heads, crop + colour views when the training split has
    them) in order, starting a trial only if the budget leaves room for one more of the
    slowest so far; keeps the best validation score (ties: the earlier, simpler entry). With
    the budget left it trains more seeds of the winner, up to ``max_seeds``, and returns their
    average if its validation score is at least the single model's. ``result.trials`` lists
    every trial with its options, score and seconds.

    ``probe_head``: then fit the probe baseline into the model and mix it in per condition
    where validation says it pays (``prodcat_django.ml.probe.attach_probe_head``), so the
    recipe's candidates include the probe's own form. Its time is not part of ``budget_s``
    (a few logistic regressions on cached features).
    """
    started = time.perf_counter()
    say = log or (lambda message: None)
    if base is None:
        augmented = sum(1 for v in train_split.images if v.startswith("aug"))
        base = TrainOptions(epochs=12, aux_heads=True, augment_views=augmented)
    entries = list(AUTO_GRID if grid is None else grid)
    if base.fusion != "attention":
        entries = [e for e in entries if "layers" not in e]
    trials: list[dict[str, Any]] = []
    best: tuple[float, TrainResult, TrainOptions] | None = None
    slowest = 0.0
    for overrides in entries:
        elapsed = time.perf_counter() - started
        if best is not None and elapsed + slowest > budget_s:
            say(f"auto_fit: budget left {budget_s - elapsed:.0f}s, skipping {overrides or 'base'}")
            continue
        options = replace(base, **overrides)
        result = train(
            options,
            train_split,
            val_split,
            labels,
            text_spec=text_spec,
            image_spec=image_spec,
            device=device,
            progress=progress,
        )
        slowest = max(slowest, result.seconds)
        trials.append(
            {
                "overrides": overrides,
                "score": round(result.score, 5),
                "val": result.val,
                "best_epoch": result.best_epoch,
                "seconds": round(result.seconds, 1),
            }
        )
        say(f"auto_fit: {overrides or 'base'}: val {result.score:.4f} ({result.seconds:.0f}s)")
        if best is None or result.score > best[0]:
            best = (result.score, result, options)
    assert best is not None, "auto_fit needs at least one grid entry"
    score, single, options = best
    # More seeds of the winner, as many as the budget left fits (each costs about one trial).
    left = budget_s - (time.perf_counter() - started)
    extra = max(0, min(max_seeds - 1, int(left // max(single.seconds, 1e-9))))
    seeds = [options.seed + k for k in range(1 + extra)]
    chosen = single
    if len(seeds) > 1:
        ensemble = train_ensemble(
            options,
            train_split,
            val_split,
            labels,
            seeds=seeds,
            members=[single],
            text_spec=text_spec,
            image_spec=image_spec,
            device=device,
            progress=progress,
        )
        trials.append(
            {
                "overrides": {"seeds": seeds},
                "score": round(ensemble.score, 5),
                "val": ensemble.val,
                "seconds": round(ensemble.seconds, 1),
            }
        )
        say(f"auto_fit: {len(seeds)} seeds averaged: val score {ensemble.score:.4f}")
        if ensemble.score >= score:
            chosen = ensemble
    chosen.trials, chosen.options = trials, options
    if probe_head:
        from prodcat_django.ml.probe import attach_probe_head

        chosen = attach_probe_head(chosen, train_split, val_split, options, device=device, log=say)
        say(f"auto_fit: with the probe head: val score {chosen.score:.4f}")
    chosen.seconds = time.perf_counter() - started
    return chosen
