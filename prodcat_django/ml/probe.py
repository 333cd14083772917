"""The probe baseline: logistic regression on frozen pooled features of the same encoders.

The yardstick the trained model must beat (issue 9): per product, the mean-pooled MiniLM
sentence embedding (token states averaged over the attention mask, [CLS]/[SEP] included, as
sentence-transformers pools all-MiniLM-L6-v2) and the global-average-pooled EfficientNet-Lite0
map (the *pretrained* last block, ``conv_head`` and BatchNorm run on the cached block input),
each L2-normalised. One multinomial logistic regression per input condition, trained on the
features that condition has (full title + image: both concatenated; image only: the image
vector; ...), its C chosen on validation accuracy. Everything comes from the feature cache, so a
probe costs seconds once the splits are encoded.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from prodcat_django.ml.model import ImageTail
from prodcat_django.ml.train import EncodedSplit

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)  # an all-zero row (no title, no image) stays zero


def pooled_text(split: EncodedSplit, column: str) -> np.ndarray:
    """(N, D) mean-pooled, L2-normalised title embeddings; zeros for an empty title."""
    states, mask = split.texts[column]
    weights = mask.unsqueeze(-1).float()
    mean = (states.float() * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    return _l2(mean.numpy())


@torch.no_grad()
def pooled_image(split: EncodedSplit, tail: ImageTail, batch_size: int = 256) -> np.ndarray:
    """(N, C) global-average-pooled, L2-normalised pretrained-tail maps; zeros if no image."""
    maps, present = split.images["orig"]
    tail.eval()
    out = []
    for start in range(0, len(split), batch_size):
        fmap = tail(maps[start : start + batch_size].float())
        out.append(fmap.mean((2, 3)))
    pooled = torch.cat(out).numpy() * present[:, None].numpy()
    return _l2(pooled)


def pretrained_tail(image_spec: dict) -> ImageTail:
    torch.manual_seed(0)  # the tiny-random tail of tests is initialised from the global RNG
    return ImageTail(image_spec, pretrained=True).eval()


@dataclass
class ProbeResult:
    """Per condition: the chosen C, validation and test accuracy, and the C sweep."""

    conditions: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    def accuracy(self, split: str = "test") -> dict[str, float]:
        return {name: c[split] for name, c in self.conditions.items() if c.get(split) is not None}


def probe_conditions(
    split: EncodedSplit, title_column: str, terse_column: str | None
) -> dict[str, tuple[str | None, bool]]:
    """The same conditions as the trained model's evaluation: name -> (text column, image)."""
    result: dict[str, tuple[str | None, bool]] = {"full": (title_column, True)}
    if terse_column and terse_column in split.texts:
        result["terse"] = (terse_column, True)
    result["image_only"] = (None, True)
    result["title_only"] = (title_column, False)
    return result


def _features(split, column, use_image, image_vectors) -> np.ndarray:
    parts = []
    if column is not None:
        parts.append(pooled_text(split, column))
    if use_image:
        parts.append(image_vectors)
    return np.concatenate(parts, axis=1)


def fit_probe(
    train_split: EncodedSplit,
    val_split: EncodedSplit,
    test_split: EncodedSplit | None,
    image_spec: dict,
    *,
    title_column: str = "title",
    terse_column: str | None = "title_terse",
    c_grid: Sequence[float] = C_GRID,
    max_iter: int = 3000,
) -> ProbeResult:
    """Fit one logistic regression per condition (C by validation accuracy) and score it."""
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    tail = pretrained_tail(image_spec)
    splits = {"train": train_split, "val": val_split}
    if test_split is not None:
        splits["test"] = test_split
    images = {name: pooled_image(s, tail) for name, s in splits.items()}
    y = {name: s.labels.numpy() for name, s in splits.items()}
    result = ProbeResult()
    for name, (column, use_image) in probe_conditions(
        train_split, title_column, terse_column
    ).items():
        if any(column is not None and column not in s.texts for s in splits.values()):
            continue
        x = {k: _features(s, column, use_image, images[k]) for k, s in splits.items()}
        sweep, best = {}, None
        # Ascending C with warm starts: each fit starts from the previous (smaller-C) solution.
        clf = LogisticRegression(max_iter=max_iter, warm_start=True)
        for c in sorted(c_grid):
            clf.set_params(C=c)
            clf.fit(x["train"], y["train"])
            val_acc = float((clf.predict(x["val"]) == y["val"]).mean())
            sweep[str(c)] = round(val_acc, 5)
            if best is None or val_acc > best[0]:  # ties keep the smaller C
                best = (val_acc, c, copy.deepcopy(clf))
        assert best is not None
        val_acc, c, clf = best
        entry = {"C": c, "val": round(val_acc, 5), "val_by_C": sweep}
        if "test" in x:
            entry["test"] = round(float((clf.predict(x["test"]) == y["test"]).mean()), 5)
            entry["n_test"] = len(y["test"])
        result.conditions[name] = entry
    result.seconds = time.perf_counter() - started
    return result


# ── the probe as part of the trained model (ProbeHead + ProbeEnsemble) ──────────────────────

# The probe's share per condition: 0 = the trained model alone, 1 = the probe alone.
WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
PROBE_FEATURES = (
    "L2-normalised mean-pooled title token states; L2-normalised global-average-pooled map of "
    "the pretrained image tail (a frozen copy)"
)


def _inputs(split: EncodedSplit, column: str | None, use_image: bool, text_dim: int):
    """A condition's model inputs for the whole split, as ``predict_logits`` builds them."""
    n = len(split)
    if column is not None:
        text, mask = split.texts[column][0], split.texts[column][1]
    else:
        text, mask = torch.zeros(n, 1, text_dim), torch.zeros(n, 1, dtype=torch.bool)
    image, present = split.images["orig"]
    return text, mask, image, present if use_image else torch.zeros_like(present)


@torch.no_grad()
def _pooled(head, split: EncodedSplit, column: str | None, use_image: bool, batch: int = 256):
    """Pooled features (as ``ProbeHead.features``) and the condition index of every row."""
    text, mask, image, present = _inputs(split, column, use_image, head.text_dim)
    parts = [[], [], []]
    for start in range(0, len(split), batch):
        sl = slice(start, start + batch)
        t, i = head.features(text[sl].float(), mask[sl], image[sl].float(), present[sl])
        parts[0].append(t)
        parts[1].append(i if i is not None else torch.zeros(len(t), 0))
        parts[2].append(head.condition_index(mask[sl][:, : head.max_tokens], present[sl]))
    return tuple(torch.cat(p) for p in parts)


def _fit_c(x_train, y_train, x_val, y_val, c_grid, max_iter):
    """Logistic regressions over ``c_grid`` (ascending, warm-started); the best on validation."""
    from sklearn.linear_model import LogisticRegression

    clf, sweep, best = LogisticRegression(max_iter=max_iter, warm_start=True), {}, None
    for c in sorted(c_grid):
        clf.set_params(C=c)
        clf.fit(x_train, y_train)
        val_acc = float((clf.predict(x_val) == y_val).mean()) if len(y_val) else 0.0
        sweep[str(c)] = round(val_acc, 5)
        if best is None or val_acc > best[0]:  # ties keep the smaller C
            best = (val_acc, c, copy.deepcopy(clf))
    assert best is not None
    return best[2], best[1], best[0], sweep


def _copy_regression(linear: torch.nn.Linear, clf) -> None:
    """sklearn's coefficients into ``linear`` (classes it never saw get a very low logit)."""
    weight = torch.zeros_like(linear.weight)
    bias = torch.full_like(linear.bias, -1e4)
    coef = torch.from_numpy(np.asarray(clf.coef_, dtype=np.float32))
    intercept = torch.from_numpy(np.asarray(clf.intercept_, dtype=np.float32))
    classes = [int(c) for c in clf.classes_]
    if len(classes) == 2:  # binary: one row w; logits (-z/2, z/2) give the same softmax
        coef = torch.stack([-coef[0] / 2, coef[0] / 2])
        intercept = torch.stack([-intercept[0] / 2, intercept[0] / 2])
    for row, cls in enumerate(classes):
        weight[cls], bias[cls] = coef[row], intercept[row]
    linear.weight.copy_(weight)
    linear.bias.copy_(bias)


def _choose_weight(base_lp, probe_lp, labels) -> tuple[float, dict[str, float]]:
    """The weight in WEIGHT_GRID with the best accuracy (ties: the lower log loss)."""
    known = labels >= 0
    scores, keys = {}, {}
    for w in WEIGHT_GRID:
        lp = (1 - w) * base_lp + w * probe_lp
        acc = float((lp.argmax(1) == labels).float().mean()) if len(labels) else 0.0
        nll = float(-lp[known].gather(1, labels[known][:, None]).mean()) if known.any() else 0.0
        scores[str(w)], keys[w] = round(acc, 5), (acc, -nll)
    return max(WEIGHT_GRID, key=lambda w: keys[w]), scores


@torch.no_grad()
def attach_probe_head(
    result,
    train_split: EncodedSplit,
    val_split: EncodedSplit,
    options,
    *,
    c_grid: Sequence[float] = C_GRID,
    max_iter: int = 3000,
    device: str = "cpu",
    log=None,
):
    """Fit the probe into the trained model and mix it in where validation says it pays.

    Per condition (title + photo, photo only, title only) a logistic regression on the frozen
    pooled features, C chosen on validation (the ``both`` head is trained and chosen on the
    full and, where present, terse titles together: at prediction time nobody says which one
    a title is); then each condition's share of the probe in the output, from WEIGHT_GRID
    (0 = the trained model alone, 1 = the probe alone) by validation accuracy over that
    condition's products. Returns a new, recalibrated ``TrainResult`` whose model is a
    ``ProbeEnsemble`` (even when every weight is 0: the probe's own held-out accuracy is then
    still reported next to the model's, for one extra MBConv block per photo), or ``result``
    itself when no head could be fitted. ``history`` gets a ``probe_head`` entry: C, weights
    and the validation scores.
    """
    from prodcat_django.ml.model import PROBE_CONDITIONS, ProbeEnsemble, ProbeHead
    from prodcat_django.ml.train import calibrate, conditions

    started = time.perf_counter()
    say = log or (lambda message: None)
    base = result.model
    heads = (
        ["text"]
        if options.no_image or not base.uses_image()
        else ["image"]
        if options.no_title or not base.uses_text()
        else list(PROBE_CONDITIONS)
    )
    config = copy.deepcopy(result.config)
    config["model"]["probe"] = {"heads": heads, "features": PROBE_FEATURES}
    torch.manual_seed(0)  # a tiny-random tail is initialised from the global RNG
    probe = ProbeHead(config, pretrained_tail=True).eval()
    columns = [options.title_column]
    if options.terse_column and options.terse_column in train_split.texts:
        columns.append(options.terse_column)
    # Rows of each head: (split, column, image) pairs whose products route to it.
    sources = {
        "both": [(c, True) for c in columns],
        "image": [(None, True)],
        "text": [(options.title_column, False)],
    }
    pooled: dict = {}

    def rows_of(split_name, split, head):
        xs, ys = [], []
        for column, use_image in sources[head]:
            key = (split_name, column, use_image)
            if key not in pooled:
                pooled[key] = _pooled(probe, split, column, use_image)
            t, i, index = pooled[key]
            keep = (index == PROBE_CONDITIONS.index(head)) & (split.labels >= 0)
            x = torch.cat([t, i], 1) if head == "both" else i if head == "image" else t
            xs.append(x[keep])
            ys.append(split.labels[keep])
        return torch.cat(xs).numpy(), torch.cat(ys).numpy()

    report: dict = {"heads": {}}
    for head in list(heads):
        x_train, y_train = rows_of("train", train_split, head)
        x_val, y_val = rows_of("val", val_split, head)
        if len(set(y_train.tolist())) < 2:
            heads.remove(head)  # nothing to tell apart (e.g. no photos in training)
            say(f"probe head {head}: left out (its training products have under 2 labels)")
            continue
        clf, c, val_acc, sweep = _fit_c(x_train, y_train, x_val, y_val, c_grid, max_iter)
        _copy_regression(probe.linear[head], clf)
        report["heads"][head] = {"C": c, "val": round(val_acc, 5), "val_by_C": sweep}
        say(f"probe head {head}: C={c}, validation {val_acc:.4f} on {len(y_val)} products")
    if not heads:
        result.history.append({"probe_head": {"attached": False, "why": "no head could be fitted"}})
        return result
    for head in set(probe.heads) - set(heads):
        del probe.linear[head]
    probe.heads = tuple(heads)
    config["model"]["probe"]["heads"] = heads
    ensemble = ProbeEnsemble(base, probe.to(device)).eval()

    # Each head's share, chosen on the validation products routed to it, over all conditions.
    from prodcat_django.ml.train import predict_logits

    val_conditions = conditions(val_split, options)
    lps = {}
    for name, (column, use_image) in val_conditions.items():
        probe.weights.fill_(0.0)
        base_lp = predict_logits(ensemble, val_split, column, use_image, device=device)
        probe.weights.fill_(1.0)
        probe_lp = predict_logits(ensemble, val_split, column, use_image, device=device)
        _t, _i, index = _pooled(probe, val_split, column, use_image)
        lps[name] = (base_lp, probe_lp, index)
    weights = torch.zeros(len(PROBE_CONDITIONS))
    for k, head in enumerate(PROBE_CONDITIONS):
        if head not in heads:
            continue
        parts = [(b[i == k], p[i == k], val_split.labels[i == k]) for b, p, i in lps.values()]
        b, p, y = (torch.cat(x) for x in zip(*parts, strict=True))
        w, scores = _choose_weight(b, p, y)
        weights[k] = w
        report["heads"][head].update({"weight": w, "val_by_weight": scores, "n_val": len(y)})
        say(f"probe head {head}: weight {w} (validation accuracy by weight {scores})")
    report["val_accuracy"] = {
        name: {
            "model": round(float((b.argmax(1) == val_split.labels).float().mean()), 5),
            "probe": round(float((p.argmax(1) == val_split.labels).float().mean()), 5),
        }
        for name, (b, p, _i) in lps.items()
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    probe.weights.copy_(weights)
    new = calibrate(ensemble, config, result.labels, val_split, options, device)
    for name, entry in report["val_accuracy"].items():
        entry["ensemble"] = round(new.val[name]["accuracy"], 5)
    new.history = [*result.history, {"probe_head": {**report, "attached": True}}]
    new.best_epoch, new.trials, new.options = result.best_epoch, result.trials, result.options
    new.seconds = result.seconds + (time.perf_counter() - started)
    return new


@contextmanager
def probe_weights(model, value: float):
    """Temporarily give every probe head the same weight: 1 = the probe alone, 0 = the
    trained model alone (to report both next to the ensemble)."""
    saved = model.probe.weights.clone()
    model.probe.weights.fill_(value)
    try:
        yield model
    finally:
        model.probe.weights.copy_(saved)


def component_accuracies(model, split: EncodedSplit, options, device: str = "cpu") -> dict:
    """Accuracy per condition of the probe alone and of the trained model alone, for a
    ``ProbeEnsemble`` (empty for any other model)."""
    from prodcat_django.ml.model import ProbeEnsemble
    from prodcat_django.ml.train import conditions, predict_logits

    if not isinstance(model, ProbeEnsemble):
        return {}
    out: dict[str, dict[str, float]] = {}
    for part, value in (("probe", 1.0), ("model", 0.0)):
        with probe_weights(model, value):
            out[part] = {
                name: round(
                    float(
                        (predict_logits(model, split, col, img, device=device).argmax(1))
                        .eq(split.labels)
                        .float()
                        .mean()
                    ),
                    5,
                )
                for name, (col, img) in conditions(split, options).items()
            }
    return out
