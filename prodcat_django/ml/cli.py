"""``python -m prodcat_django.ml train|evaluate|encode|probe|calibrate-ood|learning-curve``.

The classifier's command line (the last two live in ``ml/cli_ood.py``)."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import warnings
from dataclasses import replace
from pathlib import Path

from prodcat_django.ml.data import DataError, Product, fingerprint, read_products
from prodcat_django.ml.images import InvalidImageError
from prodcat_django.ml.manifest import CheckpointError


def _common_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--title-column", default="title", help="text column to read (default title)"
    )
    parser.add_argument("--no-image", action="store_true", help="ignore images")
    parser.add_argument("--no-title", action="store_true", help="ignore titles")
    parser.add_argument(
        "--missing-images",
        choices=("error", "warn"),
        default="error",
        help="an image file that is missing or undecodable: stop with an error (default), or "
        "warn and treat that product as having no image",
    )
    parser.add_argument("--cache", type=Path, default=None, help="feature cache folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx"],
        default=None,
        help="runtime of the frozen encoders: onnx (ONNX Runtime, CPU), torch, or auto (onnx "
        "where onnxruntime imports and the export matches torch, else torch; default: "
        "PRODCAT_ENCODER_BACKEND, else auto)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


#: The CSV format, shown by ``train --help`` and ``evaluate --help`` (prodcat_django.ml.data).
CSV_FORMAT = """The product CSV (UTF-8, with a header row) has one product per row:

  id      any unique text (a product id)
  title   the product title (may be empty when the row has an image)
  label   the category name the model should predict (required)
  image   path of the product photo, relative to the CSV's folder (may be empty)

Other columns are ignored, except title_terse (a short title, mixed into training and
evaluated as its own condition) and the column named by --title-column. Example:

  id,title,label,image
  1001,Leather ankle boots,Shoes,images/1001.jpg
  1002,Steel diver watch,Watches,images/1002.jpg"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m prodcat_django.ml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train a checkpoint on a product CSV",
        description="Train a checkpoint on product CSVs.",
        epilog=CSV_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--train", type=Path, required=True, help="training CSV (format below)")
    t.add_argument("--val", type=Path, required=True, help="early stopping and calibration")
    t.add_argument(
        "--test", type=Path, help="evaluated once at the end; metrics go in the manifest"
    )
    t.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    t.add_argument("--name", help="checkpoint name (default: the parent folder's name)")
    t.add_argument("--version", help="checkpoint version (default: the folder's name)")
    t.add_argument(
        "--fusion",
        choices=("text", "image", "concat", "attention"),
        default="attention",
        help="how title and photo are combined (default attention; text/image: one only)",
    )
    t.add_argument("--terse-column", default="title_terse", help="mixed into training when present")
    t.add_argument(
        "--terse-prob",
        type=float,
        default=0.5,
        help="share of training examples shown with the terse title (default 0.5)",
    )
    t.add_argument("--epochs", type=int, default=20, help="most epochs (default 20)")
    t.add_argument("--batch-size", type=int, default=64, help="examples per step (default 64)")
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    t.add_argument(
        "--tail-lr",
        type=float,
        default=1e-4,
        help="learning rate of the image encoder's last block (default 1e-4)",
    )
    t.add_argument(
        "--freeze-image-tail", action="store_true", help="do not fine-tune the last block"
    )
    t.add_argument("--width", type=int, default=256, help="fusion width (default 256)")
    t.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    t.add_argument("--layers", type=int, default=1, help="fusion layers (default 1)")
    t.add_argument("--dropout", type=float, default=0.1, help="dropout (default 0.1)")
    t.add_argument(
        "--weight-decay", type=float, default=0.05, help="AdamW weight decay (default 0.05)"
    )
    t.add_argument(
        "--label-smoothing", type=float, default=0.1, help="label smoothing (default 0.1)"
    )
    t.add_argument("--drop-image", type=float, default=0.15, help="modality dropout: no image")
    t.add_argument("--drop-text", type=float, default=0.15, help="modality dropout: no title")
    t.add_argument("--no-flip", action="store_true", help="no mirrored-image augmentation")
    t.add_argument(
        "--augment-views",
        type=int,
        default=0,
        metavar="K",
        help="also draw from K cached crop + colour views of each training image (aug1..augK)",
    )
    t.add_argument(
        "--aux-heads",
        action="store_true",
        help="attention: joint image-only and title-only heads, ensembled (weight on validation)",
    )
    t.add_argument(
        "--seeds", type=int, default=1, help="train this many seeds and average them (ensemble)"
    )
    t.add_argument(
        "--auto",
        action="store_true",
        help="choose the recipe on validation (train.auto_fit: a small grid over these options, "
        "then more seeds if the budget allows); --seeds is then the most seeds to average",
    )
    t.add_argument("--budget", type=float, default=3600, help="--auto: time budget in seconds")
    t.add_argument(
        "--probe-head",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fit the probe (logistic regressions on frozen pooled features, C on validation) "
        "into the checkpoint and mix it in per condition with weights chosen on validation "
        "(default: on with --auto or --from-checkpoint, off otherwise)",
    )
    t.add_argument(
        "--from-checkpoint",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="do not train: start from this checkpoint's model (same labels and encoders), "
        "recalibrate it and add the probe head; the budget path when training is too slow. "
        "Several checkpoints of one architecture (say, seeds trained on different machines) "
        "are averaged into one ensemble",
    )
    t.add_argument(
        "--patience",
        type=int,
        default=5,
        help="stop after this many epochs without a better validation score (default 5)",
    )
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument(
        "--weights-dtype",
        choices=("float32", "float16"),
        default="float16",
        help="how the trained weights are stored (default float16)",
    )
    t.add_argument(
        "--encoders",
        choices=("pretrained", "tiny-random"),
        default="pretrained",
        help="tiny-random: small random encoders, for tests of the command itself",
    )
    _common_data_options(t)

    e = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a product CSV",
        description="Evaluate a checkpoint on a product CSV: accuracy per condition (full "
        "title, terse title, image only), calibration, auto-accept precision.",
        epilog=CSV_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--data", type=Path, required=True, help="the CSV to evaluate on (format below)")
    e.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped one")
    e.add_argument("--plot", type=Path, help="write a confusion matrix + reliability diagram PNG")
    _common_data_options(e)

    p = sub.add_parser(
        "probe",
        help="the baseline: logistic regression on frozen pooled features, per condition",
        epilog=CSV_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--train", type=Path, required=True, help="training CSV (format below)")
    p.add_argument("--val", type=Path, required=True, help="chooses C for each condition")
    p.add_argument("--test", type=Path, help="scored once with the chosen C")
    p.add_argument("--terse-column", default="title_terse", help="a condition when present")
    _common_data_options(p)

    c = sub.add_parser(
        "encode",
        help="fill the feature cache for a CSV (optionally mirrored too)",
        epilog=CSV_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument(
        "--data", type=Path, required=True, nargs="+", help="product CSVs (format below)"
    )
    c.add_argument("--flip", action="store_true", help="also cache mirrored images")
    c.add_argument(
        "--augment", type=int, default=0, metavar="K", help="also cache K crop + colour views"
    )
    c.add_argument("--checkpoint", type=Path, default=None, help="encoders of this checkpoint")
    _common_data_options(c)
    from prodcat_django.ml.cli_ood import add_parsers

    add_parsers(sub, _common_data_options)
    return parser


def _device(requested: str | None) -> str:
    import torch

    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


def _setup_torch() -> None:
    import os

    import torch

    # The shop's worker box is small; PRODCAT_THREADS raises it on a bigger one.
    torch.set_num_threads(int(os.environ.get("PRODCAT_THREADS", "2")))


def cmd_train(args: argparse.Namespace) -> dict:
    from prodcat_django.ml.checkpoint import save_checkpoint
    from prodcat_django.ml.encoders import (
        build_image_encoder,
        build_text_encoder,
        image_encoder_spec,
        text_encoder_spec,
    )
    from prodcat_django.ml.evaluation import evaluate_split, summary
    from prodcat_django.ml.features import FeatureCache
    from prodcat_django.ml.probe import attach_probe_head, component_accuracies
    from prodcat_django.ml.train import (
        EncodedSplit,
        TrainOptions,
        auto_fit,
        calibrate,
        conditions,
        encode_split,
        image_views,
        options_dict,
        train,
        train_ensemble,
    )

    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        # A half-overwritten folder would mix files from two runs under one manifest.
        raise DataError(
            f"{args.out}: already exists and is not empty (use --overwrite to replace it)"
        )
    device = _device(args.device)
    train_products = read_products(args.train, args.title_column)
    val_products = read_products(args.val, args.title_column)
    labels = sorted({p.label for p in train_products})
    missing_in_train = sorted({p.label for p in val_products} - set(labels))
    if missing_in_train:
        raise DataError(f"{args.val}: labels never seen in training: {', '.join(missing_in_train)}")
    start = _starting_models(args.from_checkpoint, labels, device) if args.from_checkpoint else None
    options = TrainOptions(
        fusion=args.fusion,
        width=args.width,
        heads=args.heads,
        layers=args.layers,
        dropout=args.dropout,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        tail_lr=args.tail_lr,
        tune_tail=not args.freeze_image_tail,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        patience=args.patience,
        seed=args.seed,
        title_column=args.title_column,
        terse_column=args.terse_column if args.terse_column != args.title_column else None,
        terse_prob=args.terse_prob,
        drop_image=args.drop_image,
        drop_text=args.drop_text,
        flip=not args.no_flip,
        no_image=args.no_image,
        no_title=args.no_title,
        weights_dtype=args.weights_dtype,
        aux_heads=args.aux_heads,
        augment_views=args.augment_views,
    )
    if start is not None:
        text_spec, image_spec = start[1]["text_encoder"], start[1]["image_encoder"]
        options = replace(options, flip=False, augment_views=0)  # nothing is trained
    elif args.encoders == "tiny-random":  # fast tests of the whole command, no weights loaded
        from prodcat_django.ml.testing import tiny_config

        tiny = tiny_config(len(labels), seed=args.seed)
        text_spec, image_spec = tiny["text_encoder"], tiny["image_encoder"]
    else:
        text_spec, image_spec = (
            text_encoder_spec("minilm"),
            image_encoder_spec("efficientnet-lite0"),
        )
    cache = FeatureCache(
        build_text_encoder(text_spec, backend=args.backend, device=device).to(device),
        build_image_encoder(image_spec, backend=args.backend, device=device).to(device),
        root=args.cache,
        progress=not args.quiet,
    )
    columns = [c for c in dict.fromkeys((args.title_column, options.terse_column)) if c]
    train_columns = [c for c in columns if c in train_products[0].titles]
    train_split = encode_split(
        train_products, cache, labels, train_columns, image_views(options), args.missing_images
    )
    val_columns = [c for c in columns if c in val_products[0].titles]
    val_split = encode_split(
        val_products, cache, labels, val_columns, ("orig",), args.missing_images
    )
    common = {
        "text_spec": text_spec,
        "image_spec": image_spec,
        "device": device,
        "progress": not args.quiet,
    }
    say = None if args.quiet else lambda m: print(m, file=sys.stderr)
    probe_head = args.probe_head if args.probe_head is not None else bool(args.auto or start)
    if start is not None:
        model, base_config, origin = start
        result = calibrate(model, base_config, labels, val_split, options, device)
        result.history = [{"from_checkpoint": origin}]
    elif args.auto:
        result = auto_fit(
            train_split,
            val_split,
            labels,
            budget_s=args.budget,
            base=options,
            max_seeds=max(1, args.seeds),
            log=say,
            probe_head=probe_head,
            **common,
        )
        options = result.options or options
    elif args.seeds > 1:
        seeds = [args.seed + k for k in range(args.seeds)]
        result = train_ensemble(options, train_split, val_split, labels, seeds=seeds, **common)
    else:
        result = train(options, train_split, val_split, labels, **common)
    if probe_head and not args.auto:
        result = attach_probe_head(result, train_split, val_split, options, device=device, log=say)

    def metrics_by_condition(split: EncodedSplit, products: list[Product]) -> dict:
        """The trained model's summary on ``split`` under each input condition."""
        return {
            name: summary(
                evaluate_split(
                    result.model,
                    split,
                    [p.label for p in products],
                    labels,
                    result.temperature,
                    result.threshold,
                    column=col,
                    use_image=img,
                    device=device,
                )
            )
            for name, (col, img) in conditions(split, options).items()
        }

    val_metrics = metrics_by_condition(val_split, val_products)
    components = {"val": component_accuracies(result.model, val_split, options, device)}
    test_metrics = {}
    data_files = [args.train, args.val]
    if args.test:
        test_products = read_products(args.test, args.title_column)
        test_columns = [c for c in columns if c in test_products[0].titles]
        test_split = encode_split(
            test_products, cache, labels, test_columns, ("orig",), args.missing_images
        )
        test_metrics = metrics_by_condition(test_split, test_products)
        components["test"] = component_accuracies(result.model, test_split, options, device)
    out = args.out
    if out.exists():
        shutil.rmtree(out)  # --overwrite: start from an empty folder
    config = {
        "name": args.name or out.parent.name,
        "version": args.version or out.name,
        **result.config,
    }
    save_checkpoint(
        out,
        result.model,
        config,
        labels,
        {
            "temperature": round(result.temperature, 6),
            "threshold": None if result.threshold is None else round(result.threshold, 6),
            "metrics": {"val": val_metrics, "test": test_metrics},
            # probe head models: accuracy of the probe alone and the trained model alone
            "component_accuracy": components if components["val"] else None,
            "training": {
                "command": "python -m prodcat_django.ml " + shlex.join(args.argv),
                "data": [str(p) for p in data_files],
                "data_fingerprint": "sha256:"
                + fingerprint(data_files, [*train_products, *val_products]),
                "data_fingerprint_covers": "train and val CSV bytes and their image files",
                "options": options_dict(options),
                "members": int(result.config["model"].get("members", 1)),
                "auto_fit_trials": result.trials,
                "from_checkpoint": start[2] if start is not None else None,
                "probe_head": next(
                    (h["probe_head"] for h in result.history if "probe_head" in h), None
                ),
                "best_epoch": result.best_epoch,
                "epochs_run": sum(1 for h in result.history if "epoch" in h),
                "seconds": round(result.seconds, 1),
                "history": result.history,
            },
        },
    )
    if not args.no_title and not args.no_image:  # the out-of-taxonomy detector (ml/ood.py)
        from prodcat_django.ml.abstain import attach_detector

        attach_detector(
            out,
            result.model,
            train_split,
            val_split,
            args.title_column,
            image_spec,
            result.temperature,
            (cache.text_encoder.encoder_id, cache.image_encoder.encoder_id),
            device=device,
            info={"command": "python -m prodcat_django.ml " + shlex.join(args.argv)},
        )
    return {
        "checkpoint": str(out),
        "temperature": result.temperature,
        "threshold": result.threshold,
        "best_epoch": result.best_epoch,
        "seconds": round(result.seconds, 1),
        "members": int(result.config["model"].get("members", 1)),
        "trials": result.trials,
        "val": val_metrics,
        "test": test_metrics,
        "component_accuracy": components if components["val"] else None,
    }


def _starting_model(path: Path, labels: list[str], device: str):
    """``--from-checkpoint``: its trained model (without any probe head), config and origin."""
    from prodcat_django.ml.checkpoint import load_model
    from prodcat_django.ml.model import ProbeEnsemble

    try:
        model, info = load_model(path, device)
    except CheckpointError as exc:
        raise DataError(f"--from-checkpoint: {exc}") from exc
    if list(info.labels) != labels:
        raise DataError(
            f"--from-checkpoint {path}: its labels {list(info.labels)} are not the training "
            f"CSV's {labels}"
        )
    config = {k: v for k, v in info.config.items() if k not in ("name", "version")}
    if isinstance(model, ProbeEnsemble):  # its probe head is refitted on this data
        model = model.base
        config["model"] = {k: v for k, v in config["model"].items() if k != "probe"}
    from prodcat_django.ml.manifest import sha256_file

    origin = {
        "name": info.name,
        "version": info.version,
        "manifest_sha256": sha256_file(Path(path) / "manifest.json"),
    }
    return model, config, origin


def _starting_models(paths: list[Path], labels: list[str], device: str):
    """``--from-checkpoint A [B ...]``: one model, or the average of several as one ensemble.

    Members must share labels, encoders and architecture (``FusionEnsemble`` holds one config);
    an ensemble given as a member contributes each of its own members.
    """
    from prodcat_django.ml.model import FusionEnsemble, ensemble_of

    if len(paths) == 1:
        return _starting_model(paths[0], labels, device)
    models, configs, origins = [], [], []
    for path in paths:
        model, config, origin = _starting_model(path, labels, device)
        members = list(model.members) if isinstance(model, FusionEnsemble) else [model]
        models.extend(members)
        configs.append(config)
        origins.append(origin)

    def architecture(config: dict) -> dict:
        return {
            **{k: v for k, v in config.items() if k != "model"},
            "model": {k: v for k, v in config["model"].items() if k != "members"},
        }

    first = architecture(configs[0])
    for path, config in zip(paths[1:], configs[1:], strict=True):
        if architecture(config) != first:
            raise DataError(
                f"--from-checkpoint {path}: not the architecture or encoders of {paths[0]}; "
                "only checkpoints of one recipe can be averaged"
            )
    ensemble, config = ensemble_of(first, models)
    return ensemble.to(device), config, origins


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from prodcat_django.ml.checkpoint import load_model
    from prodcat_django.ml.encoders import build_image_encoder, build_text_encoder
    from prodcat_django.ml.evaluation import evaluate_split
    from prodcat_django.ml.features import FeatureCache
    from prodcat_django.ml.manifest import default_checkpoint_dir
    from prodcat_django.ml.train import encode_split

    if args.no_image and args.no_title:
        raise DataError("--no-image and --no-title together leave nothing to classify")
    device = _device(args.device)
    products = read_products(args.data, args.title_column)  # bad data fails before any loading
    path = args.checkpoint or default_checkpoint_dir()
    model, info = load_model(path, device)
    cache = FeatureCache(
        build_text_encoder(info.config["text_encoder"], backend=args.backend, device=device).to(
            device
        ),
        build_image_encoder(info.config["image_encoder"], backend=args.backend, device=device).to(
            device
        ),
        root=args.cache,
        progress=not args.quiet,
    )
    columns = [] if args.no_title else [args.title_column]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = encode_split(products, cache, info.labels, columns, ("orig",), args.missing_images)
    report = evaluate_split(
        model,
        split,
        [p.label for p in products],
        info.labels,
        info.temperature,
        info.threshold,
        column=None if args.no_title else args.title_column,
        use_image=not args.no_image,
        device=device,
    )
    from prodcat_django.ml.cli_ood import evaluate_ood

    column = None if args.no_title else args.title_column
    ood = evaluate_ood(model, info, split, column, not args.no_image, products, device)
    report = {
        "checkpoint": str(Path(path)),
        "data": str(args.data),
        "condition": {
            "title_column": None if args.no_title else args.title_column,
            "image": not args.no_image,
        },
        **report,
        "out_of_taxonomy": ood,  # None: the checkpoint has no detector
        "warnings": [str(w.message) for w in caught if "image" in str(w.message)],
    }
    if args.plot:
        from prodcat_django.ml.plots import plot_report

        plot_report(report, args.plot)
    return report


def cmd_probe(args: argparse.Namespace) -> dict:
    from prodcat_django.ml.encoders import (
        build_image_encoder,
        build_text_encoder,
        image_encoder_spec,
        text_encoder_spec,
    )
    from prodcat_django.ml.features import FeatureCache
    from prodcat_django.ml.probe import fit_probe
    from prodcat_django.ml.train import encode_split

    device = _device(args.device)
    paths = {"train": args.train, "val": args.val, "test": args.test}
    products = {k: read_products(v, args.title_column) for k, v in paths.items() if v}
    labels = sorted({p.label for p in products["train"]})
    text_spec, image_spec = text_encoder_spec("minilm"), image_encoder_spec("efficientnet-lite0")
    cache = FeatureCache(
        build_text_encoder(text_spec, backend=args.backend, device=device).to(device),
        build_image_encoder(image_spec, backend=args.backend, device=device).to(device),
        root=args.cache,
        progress=not args.quiet,
    )
    terse = args.terse_column if args.terse_column != args.title_column else None
    splits = {}
    for name, items in products.items():
        wanted = dict.fromkeys((args.title_column, terse))
        columns = [c for c in wanted if c and c in items[0].titles]
        splits[name] = encode_split(items, cache, labels, columns, ("orig",), args.missing_images)
    result = fit_probe(
        splits["train"],
        splits["val"],
        splits.get("test"),
        image_spec,
        title_column=args.title_column,
        terse_column=terse,
    )
    return {
        "probe": "logistic regression on L2-normalised mean-pooled MiniLM + GAP EfficientNet-Lite0",
        "data": {k: str(v) for k, v in paths.items() if v},
        "conditions": result.conditions,
        "seconds": round(result.seconds, 1),
    }


def cmd_encode(args: argparse.Namespace) -> dict:
    from prodcat_django.ml.encoders import (
        build_image_encoder,
        build_text_encoder,
        image_encoder_spec,
        text_encoder_spec,
    )
    from prodcat_django.ml.features import FeatureCache
    from prodcat_django.ml.manifest import read_checkpoint

    device = _device(args.device)
    if args.checkpoint:
        config = read_checkpoint(args.checkpoint).config
        text_spec, image_spec = config["text_encoder"], config["image_encoder"]
    else:
        text_spec, image_spec = (
            text_encoder_spec("minilm"),
            image_encoder_spec("efficientnet-lite0"),
        )
    cache = FeatureCache(
        None
        if args.no_title
        else build_text_encoder(text_spec, backend=args.backend, device=device).to(device),
        None
        if args.no_image
        else build_image_encoder(image_spec, backend=args.backend, device=device).to(device),
        root=args.cache,
        progress=not args.quiet,
    )
    counts = {}
    for csv_path in args.data:
        products = read_products(csv_path, args.title_column)
        if cache.text_encoder is not None:
            columns = sorted({c for p in products for c in p.titles})
            for column in columns:
                cache.text([p.title(column) for p in products])
        if cache.image_encoder is not None:
            views = [
                "orig",
                *(["flip"] if args.flip else []),
                *(f"aug{k}" for k in range(1, args.augment + 1)),
            ]
            for view in views:
                cache.images([p.image for p in products], view, missing=args.missing_images)
        counts[str(csv_path)] = len(products)
    return {"cache": str(cache.root), "encoded": counts}


def print_report(report: dict) -> None:
    """The readable form of an evaluation report."""
    cond = report["condition"]
    print(f"checkpoint {report['checkpoint']}")
    print(
        f"data {report['data']}  (title: {cond['title_column'] or 'none'}, "
        f"image: {'yes' if cond['image'] else 'no'})"
    )
    print(
        f"n={report['n']}  accuracy={report['accuracy']:.4f}  macro F1={report['macro_f1']:.4f}  "
        f"ECE={report['ece']:.4f}"
    )
    aa = report["auto_accept"]
    if aa["threshold"] is None:
        print("auto-accept: off (no validated threshold)")
    else:
        precision = "n/a" if aa["precision"] is None else f"{aa['precision']:.4f}"
        print(
            f"auto-accept at score >= {aa['threshold']:.4f}: precision {precision}, "
            f"coverage {aa['coverage']:.4f} ({aa['n']} of {report['n']})"
        )
    ood = report.get("out_of_taxonomy")
    if ood is None:
        print("out of taxonomy: no detector in this checkpoint")
    else:
        line = (
            f"out of taxonomy ({ood['method']}, score > {ood['threshold']:.4f}): "
            f"{ood['rate']:.4f} flagged ({ood['n_flagged']} of {report['n']})"
        )
        if "rate_unknown_labels" in ood:
            line += (
                f"; {ood['rate_known_labels']:.4f} of known labels, "
                f"{ood['rate_unknown_labels']:.4f} of labels the model does not know"
            )
        print(line)
    width = max(len(label) for label in report["per_class"])
    print(f"\n{'label':<{width}}  precision  recall     f1  support")
    for label, m in report["per_class"].items():
        print(
            f"{label:<{width}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:5.4f}  "
            f"{m['support']:7d}"
        )
    if report["unknown_labels"]:
        print(
            "\nlabels the checkpoint does not know (counted as errors): "
            + ", ".join(f"{k} ({v})" for k, v in report["unknown_labels"].items())
        )
    for message in report.get("warnings", []):
        print(f"warning: {message}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded verbatim in the manifest
    _setup_torch()
    from prodcat_django.ml.cli_ood import cmd_calibrate_ood, cmd_learning_curve

    commands = {
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "encode": cmd_encode,
        "probe": cmd_probe,
        "calibrate-ood": lambda a: cmd_calibrate_ood(a, _device(a.device)),
        "learning-curve": lambda a: cmd_learning_curve(a, _device(a.device)),
    }
    try:
        result = commands[args.command](args)
    except (DataError, CheckpointError, InvalidImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=None if args.command == "evaluate" else 2))
    elif args.command == "evaluate":
        print_report(result)
    else:
        print(json.dumps(result, indent=2))
    return 0
