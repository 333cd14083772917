"""``calibrate-ood`` and ``learning-curve``: the out-of-taxonomy and neighbour-head commands.

Registered by ``ml/cli.py``; both read products through the feature cache, so a re-run costs
seconds once the CSVs are encoded.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path
from typing import Any

from prodcat_django.ml.data import DataError, Product, read_products

CALIBRATE_HELP = """Fit (or re-fit) the out-of-taxonomy detector of an existing checkpoint.

The "far from every category" method is chosen on validation data: --outside CSVs (products
whose label the model does not know; rows of a known label are left out) and a
leave-classes-out split of --data's validation CSV. The threshold is set so that at most
--rate of the in-taxonomy validation products are flagged. The detector is written as
ood.json + ood.safetensors and the manifest re-hashed, in --out (a copy, version --version) or
in place (--in-place). --test-inside/--test-outside only report: nothing is chosen on them."""


def add_parsers(sub: argparse._SubParsersAction, common) -> None:
    c = sub.add_parser(
        "calibrate-ood",
        help="fit a checkpoint's out-of-taxonomy detector on train + validation CSVs",
        description=CALIBRATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped one")
    c.add_argument(
        "--data",
        type=Path,
        nargs=2,
        required=True,
        metavar=("TRAIN", "VAL"),
        help="the checkpoint's training CSV (reference vectors) and validation CSV (threshold)",
    )
    c.add_argument(
        "--outside",
        type=Path,
        nargs="*",
        default=[],
        help="validation CSVs of other categories, to choose the method on",
    )
    c.add_argument(
        "--method",
        default=None,
        help="force a method (knn, class_mean, energy, max_logit, msp); default: choose",
    )
    c.add_argument("--rate", type=float, default=0.05, help="in-taxonomy share flagged (0.05)")
    c.add_argument("--no-disagreement", action="store_true", help="far-only detector")
    c.add_argument("--out", type=Path, default=None, help="write a calibrated copy here")
    c.add_argument("--version", default=None, help="the copy's version (with --out)")
    c.add_argument("--in-place", action="store_true", help="write into --checkpoint itself")
    c.add_argument("--test-inside", type=Path, default=None, help="report only: in-taxonomy test")
    c.add_argument("--test-outside", type=Path, nargs="*", default=[], help="report only")
    common(c)

    lc = sub.add_parser(
        "learning-curve",
        help="accuracy of the neighbour head with 0 (names only), 1, 3, 10, 30 products per class",
        description="Neighbour-head accuracy on --test with k labelled products per category "
        "drawn from --train (several seeds), title only and title + photo; 0 = category names "
        "only. Head settings chosen on --val.",
    )
    lc.add_argument(
        "--train",
        type=Path,
        required=True,
        help=(
            "the labelled products are drawn from it; all of it, unlabelled, is the shop's "
            "catalogue that shapes name-only categories"
        ),
    )
    lc.add_argument("--val", type=Path, required=True, help="chooses the head's settings")
    lc.add_argument("--test", type=Path, required=True, help="scored once")
    lc.add_argument(
        "--shots",
        type=int,
        nargs="+",
        default=[0, 1, 3, 10, 30],
        help="labelled products per category at each point (0: category names only)",
    )
    lc.add_argument("--seeds", type=int, default=5, help="draws per point (mean reported)")
    lc.add_argument("--checkpoint", type=Path, default=None, help="encoders of this checkpoint")
    common(lc)


def _encoders(checkpoint: Path | None, device: str, cache_root, quiet: bool, backend=None):
    from prodcat_django.ml.encoders import build_image_encoder, build_text_encoder
    from prodcat_django.ml.features import FeatureCache
    from prodcat_django.ml.manifest import default_checkpoint_dir, read_checkpoint

    path = checkpoint or default_checkpoint_dir()
    info = read_checkpoint(path)
    cache = FeatureCache(
        build_text_encoder(info.config["text_encoder"], backend=backend, device=device).to(device),
        build_image_encoder(info.config["image_encoder"], backend=backend, device=device).to(
            device
        ),
        root=cache_root,
        progress=not quiet,
    )
    return Path(path), info, cache


def _split(products: list[Product], cache, labels, column: str, missing: str):
    from prodcat_django.ml.train import encode_split

    return encode_split(products, cache, labels, [column], ("orig",), missing)


def _outside(paths: list[Path], column: str, labels) -> list[Product]:
    products = [p for path in paths for p in read_products(path, column) if p.label not in labels]
    return products


def cmd_calibrate_ood(args: argparse.Namespace, device: str) -> dict:
    from prodcat_django.ml.abstain import calibrate, detector_report, outputs_for
    from prodcat_django.ml.checkpoint import load_model
    from prodcat_django.ml.knn import TEXT_WEIGHT, embedding_id
    from prodcat_django.ml.manifest import verify_checkpoint
    from prodcat_django.ml.ood import install_detector

    if args.out is None and not args.in_place:
        raise DataError("say where the detector goes: --out DIR (a copy) or --in-place")
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        raise DataError(f"{args.out}: already exists and is not empty")
    column = args.title_column
    train_products, val_products = (read_products(p, column) for p in args.data)
    path, info, cache = _encoders(args.checkpoint, device, args.cache, args.quiet, args.backend)
    labels = info.labels
    outside = _outside(args.outside, column, labels)
    if args.outside and not outside:
        raise DataError("every --outside product has a label the model knows")
    model, _ = load_model(path, device)
    known_val = [p for p in val_products if p.label in labels]
    splits = [
        _split(s, cache, labels, column, args.missing_images) for s in (train_products, known_val)
    ]
    if outside:
        splits.append(_split(outside, cache, labels, column, args.missing_images))
    outputs = outputs_for(model, splits, column, info.config["image_encoder"], device)
    text_dim = int(info.config["text_encoder"]["dim"])
    emb_id = embedding_id(
        cache.text_encoder.encoder_id,
        cache.image_encoder.encoder_id,
        outputs[0].embedding.shape[1],
        TEXT_WEIGHT,
    )
    detector, table = calibrate(
        outputs[0],
        outputs[1],
        temperature=info.temperature,
        text_dim=text_dim,
        outside=outputs[2] if outside else None,
        method=args.method,
        rate=args.rate,
        disagreement=not args.no_disagreement,
        info={
            "command": "python -m prodcat_django.ml " + shlex.join(args.argv),
            "data": [str(p) for p in args.data],
            "outside": [str(p) for p in args.outside],
        },
    )
    detector.embedding_id = emb_id
    result: dict[str, Any] = {
        "checkpoint": str(path),
        "method": detector.method,
        "neighbours": detector.neighbours,
        "threshold": detector.threshold,
        "components": sorted(detector.calibration),
        "candidates": table,
        "val": detector_report(detector, outputs[1], outputs[2] if outside else None),
    }
    if args.test_inside is not None:
        test_in = [p for p in read_products(args.test_inside, column) if p.label in labels]
        test_out = _outside(args.test_outside, column, labels)
        more = [_split(test_in, cache, labels, column, args.missing_images)]
        if test_out:
            more.append(_split(test_out, cache, labels, column, args.missing_images))
        test_outputs = outputs_for(model, more, column, info.config["image_encoder"], device)
        result["test"] = detector_report(
            detector, test_outputs[0], test_outputs[1] if test_out else None
        )
    target = path
    if args.out is not None:
        shutil.copytree(path, args.out, dirs_exist_ok=True)
        target = args.out
        if args.version:
            _set_version(target, args.version)
    detector.info["measured"] = {k: result[k] for k in ("val", "test") if k in result}
    install_detector(target, detector)
    verify_checkpoint(target)
    result["written"] = str(target)
    return result


def _set_version(root: Path, version: str) -> None:
    for name in ("config.json", "manifest.json"):
        file = root / name
        data = json.loads(file.read_text(encoding="utf-8"))
        data["version"] = version
        file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def evaluate_ood(model, info, split, column: str | None, use_image: bool, products, device):
    """``out_of_taxonomy`` of ``evaluate --json``: threshold and share flagged (None: none)."""
    import numpy as np

    from prodcat_django.ml.abstain import embed_tail, split_outputs
    from prodcat_django.ml.ood import load_detector
    from prodcat_django.ml.train import EncodedSplit

    detector = load_detector(info.path)
    if detector is None:
        return None
    if not use_image:  # the condition evaluated: every photo hidden
        maps, present = split.images["orig"]
        split = EncodedSplit(split.labels, split.texts, {"orig": (maps, present & False)})
    outputs = split_outputs(model, split, column, embed_tail(info.config["image_encoder"]), device)
    verdicts = detector.verdicts(
        outputs.embedding,
        outputs.logits,
        title_only=outputs.title_only,
        image_only=outputs.image_only,
        has_text=outputs.has_text,
        has_image=outputs.has_image,
    )
    flagged = np.array([v.flagged for v in verdicts])
    known = np.array([p.label in info.labels for p in products])
    report = {
        "threshold": detector.threshold,
        "method": detector.method,
        "rate": float(flagged.mean()),
        "n_flagged": int(flagged.sum()),
    }
    if known.any() and not known.all():  # a mix: the share within each group
        report["rate_known_labels"] = float(flagged[known].mean())
        report["rate_unknown_labels"] = float(flagged[~known].mean())
    return report


def _pooled(split, tail, labels_of: list[str]):
    import numpy as np

    from prodcat_django.ml.abstain import split_embedding
    from prodcat_django.ml.knn import l2_rows
    from prodcat_django.ml.learning_curve import Pooled

    column = next(iter(split.texts))
    text_dim = split.texts[column][0].shape[2]
    full = split_embedding(split, column, tail, text_dim, text_weight=0.5)
    # Undo the halves' weights: Pooled keeps each half at unit length.
    return Pooled(
        l2_rows(full[:, :text_dim]),
        l2_rows(full[:, text_dim:]),
        np.asarray(labels_of, dtype=object),
    )


def cmd_learning_curve(args: argparse.Namespace, device: str) -> dict:
    import time

    import numpy as np

    from prodcat_django.ml.abstain import embed_tail
    from prodcat_django.ml.learning_curve import category_name, learning_curve

    started = time.monotonic()
    column = args.title_column
    products = {k: read_products(getattr(args, k), column) for k in ("train", "val", "test")}
    categories = sorted({p.label for p in products["train"]})
    _, info, cache = _encoders(args.checkpoint, device, args.cache, args.quiet, args.backend)
    tail = embed_tail(info.config["image_encoder"])
    pooled = {
        k: _pooled(
            _split(v, cache, categories, column, args.missing_images), tail, [p.label for p in v]
        )
        for k, v in products.items()
    }
    names = [category_name(c) for c in categories]
    states = cache.text(names)
    name_text = np.stack([s.astype(np.float32).mean(0) for s in states])
    result = learning_curve(
        pooled["train"],
        pooled["val"],
        pooled["test"],
        name_text,
        categories,
        shots=args.shots,
        seeds=args.seeds,
    )
    return {
        "command": "python -m prodcat_django.ml " + shlex.join(args.argv),
        "data": {k: str(getattr(args, k)) for k in ("train", "val", "test")},
        "categories": dict(zip(categories, names, strict=True)),
        **result,
        "seconds": round(time.monotonic() - started, 1),
    }
