"""Cost of the neighbour head's numpy lookup (``ml/knn.py``) at 100k filed products.

    .venv/bin/python benchmarks/knn_lookup.py [--vectors 100000] [--categories 500] [--threads 2]

Random unit vectors of the pooled space's width (384 + 1280), grouped under ``--categories``
keys, plus a name vector per category. Prints the head's build time, its memory, and the
median wall time of ``scores()`` for a batch of 1 and of 32 queries. A script, not a test:
numbers depend on the machine and on what else runs on it. (The database-level lookup of the
Django side is measured in its own benchmark.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--categories", type=int, default=500)
    parser.add_argument("--dim", type=int, default=384 + 1280)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy loads its BLAS
    import numpy as np

    from prodcat_django.ml.knn import NeighbourHead, pooled_embedding

    rng = np.random.default_rng(0)
    half = 384
    vectors = pooled_embedding(
        rng.standard_normal((args.vectors, half), dtype=np.float32),
        rng.standard_normal((args.vectors, args.dim - half), dtype=np.float32),
    )
    keys = rng.integers(0, args.categories, args.vectors).tolist()
    names = {
        k: pooled_embedding(
            rng.standard_normal((1, half), dtype=np.float32), np.zeros((1, args.dim - half))
        )[0]
        for k in range(args.categories)
    }
    started = time.perf_counter()
    head = NeighbourHead(vectors, keys, names)
    build = time.perf_counter() - started
    result = {
        "vectors": args.vectors,
        "categories": args.categories,
        "dim": args.dim,
        "threads": args.threads,
        "build_s": round(build, 3),
        "vectors_mb": round(head._vectors.nbytes / 2**20, 1),
    }
    for batch in (1, 32):
        query = vectors[rng.integers(0, args.vectors, batch)]
        head.scores(query)  # warm-up
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            head.scores(query)
            times.append(time.perf_counter() - started)
        result[f"scores_batch{batch}_ms"] = round(1000 * statistics.median(times), 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
