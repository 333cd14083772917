#!/usr/bin/env bash
# Creates .venv (if missing) and installs the pinned stack into it.
# Usage: scripts/setup_env.sh [base|test]
# torch is pinned in the same pip command as everything that depends on it (requirements/base.txt),
# so pip takes the 2.13.0 CPU build instead of resolving a newer CUDA one.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-base}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=".venv/.prodcat-installed-$profile"
# Reinstall only when the pins changed since the last install.
want="$(cat requirements/*.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -r "requirements/$profile.txt" torch==2.13.0 -e .
    echo "$want" > "$stamp"
fi
