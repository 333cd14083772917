"""``python -m benchmarks``: the project's one benchmark (figures 1-9 of docs/performance.md)."""
