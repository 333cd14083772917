"""Peak memory of the worker's run over many large photos (one task, one process).

    .venv/bin/python benchmarks/worker_memory.py [--products 100] [--megapixels 12]
        [--checkpoint DIR] [--batch-size 32] [--threads 2]

Creates ``--products`` products in a throw-away SQLite database, each with a ``--megapixels``
JPEG photo (a drawn, noisy picture, so it compresses like a photo), then runs
``services.run_suggestions`` on all their suggestions in this process, as one Celery task
would, with the shipped model unless ``--checkpoint`` says otherwise. Prints the process's
resident memory before the run, its peak (``ru_maxrss``) and after, and the run's outcome. A
script, not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def photo(megapixels: float) -> bytes:
    import numpy as np
    from PIL import Image, ImageDraw

    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, (height // 8, width // 8, 3), dtype=np.uint8)
    image = Image.fromarray(noise).resize((width, height))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(30, 60, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--checkpoint", default="", help="default: the shipped model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()

    media = tempfile.mkdtemp(prefix="prodcat-memory-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ["PRODCAT_TEST_CHECKPOINT"] = args.checkpoint or "shipped"
    import django
    from django.conf import settings

    django.setup()
    settings.MEDIA_ROOT = media
    settings.PRODCAT = {
        **settings.PRODCAT,
        "CHECKPOINT": args.checkpoint or None,
        "TASK_BATCH_SIZE": args.batch_size,
        "AUTO_SUGGEST": False,
        "MAX_UPLOAD_BYTES": 64 * 2**20,
        "MAX_IMAGE_PIXELS": 60_000_000,
    }
    import torch
    from django.core.files.base import ContentFile
    from django.core.management import call_command

    torch.set_num_threads(args.threads)
    call_command("migrate", verbosity=0)

    from prodcat_django import services
    from prodcat_django.classifier import get_predictor
    from prodcat_django.models import CategorySuggestion
    from tests.testapp.models import Product

    data = photo(args.megapixels)
    for i in range(args.products):
        product = Product(title=f"Blue ceramic mug {i}")
        product.image.save(f"p{i}.jpg", ContentFile(data), save=False)
        product.save()
    batch = services.request_suggestions(Product.objects.all(), send=False)
    ids = list(CategorySuggestion.objects.filter(batch=batch).values_list("pk", flat=True))
    get_predictor()  # the model's own memory is part of "before", as in a warm worker
    before = rss_mib()
    started = time.perf_counter()
    report = services.run_suggestions(ids)
    seconds = time.perf_counter() - started
    after = rss_mib()
    print(
        f"{args.products} products, {args.megapixels:g} MP JPEG of {len(data) / 2**20:.1f} MiB "
        f"each, batch {args.batch_size}: ready {len(report.ready)}, failed "
        f"{len(report.failed)} in {seconds:.1f} s"
    )
    print(f"RSS before the run (model loaded): {before:,.0f} MiB")
    print(f"peak RSS (ru_maxrss):             {peak_mib():,.0f} MiB")
    print(f"RSS after the run:                {after:,.0f} MiB")


if __name__ == "__main__":
    main()
