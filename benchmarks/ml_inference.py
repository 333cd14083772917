"""Latency and throughput of ``Predictor.predict`` on CPU, with the real encoders.

    .venv/bin/python benchmarks/ml_inference.py [--checkpoint DIR] [--threads 2] [--repeats 10]

Prints the median wall time of predict() for batch 1 and batch 32 (title + a drawn 224x224
image per item, decoding excluded), throughput, model load time and peak RSS. A script, not a
test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prodcat_django.ml.predictor import Predictor, ProductInput

TITLES = [
    "Roadster Men Navy Blue Checked Casual Shirt",
    "Puma Unisex Black Running Sports Shoes",
    "Fossil Women Rose Gold Analog Watch",
    "Baggit Women Brown Handbag",
    "Nike",
]


def product(n: int) -> ProductInput:
    image = Image.new("RGB", (224, 224), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((40 + n % 30, 30, 180, 200 - n % 40), fill=(20 * (n % 12), 60, 120))
    return ProductInput(TITLES[n % len(TITLES)], image)


def measure(predictor: Predictor, batch: int, repeats: int) -> list[float]:
    items = [product(n) for n in range(batch)]
    predictor.predict(items, batch_size=batch)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict(items, batch_size=batch)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped one")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    predictor = Predictor.load(args.checkpoint, device="cpu")
    load_s = time.perf_counter() - start
    print(f"checkpoint {predictor.info.path} ({predictor.info.name} {predictor.info.version})")
    print(f"torch {torch.__version__}, {args.threads} threads, load {load_s:.2f} s")
    for batch in (1, 32):
        times = measure(predictor, batch, args.repeats if batch == 1 else max(3, args.repeats // 3))
        median = statistics.median(times)
        print(
            f"batch {batch:>2}: median {median * 1000:8.1f} ms/batch, {median / batch * 1000:7.1f} "
            f"ms/item, {batch / median:6.1f} items/s (n={len(times)})"
        )
    explain_times = []
    for n in range(5):
        start = time.perf_counter()
        predictor.explain(product(n))
        explain_times.append(time.perf_counter() - start)
    print(f"explain: median {statistics.median(explain_times) * 1000:.1f} ms")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
