#!/usr/bin/env bash
# The test command: sets everything up from scratch (pinned) and runs the whole suite.
#   1. .venv with requirements/test.txt (+ torch==2.13.0 CPU) and the app in editable mode;
#   2. Debian's chromium for the browser tests, when missing (needs root, as on CI);
#   3. ruff;
#   4. pytest on SQLite (unit, admin, API, ML, browser), then the end-to-end suite on
#      PostgreSQL + Redis (+ RabbitMQ) with a real Celery worker and the shipped model, then
#      the fault-injection suite (tests/faults: a private Redis it kills, freezes and restarts,
#      killed workers, crashing and hanging inputs; 616 s on a shared 2-core machine);
#   5. the unit and end-to-end sessions of the django-oscar add-on, in its Oscar test project
#      (tests/oscar).
# With CI=true a missing service fails the run; elsewhere those tests skip and say what to start.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup_env.sh test

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
        >/dev/null || echo "warning: could not install chromium; browser tests will skip" >&2
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1

.venv/bin/ruff check .
.venv/bin/ruff format --check .

status=0
.venv/bin/python -m pytest -m "not e2e and not faults" "$@" || status=$?
.venv/bin/python -m pytest -m e2e --ds=tests.settings_e2e "$@" || status=$?
.venv/bin/python -m pytest -m faults --ds=tests.settings_faults -s "$@" || status=$?
# The django-oscar add-on, in its own Oscar project: unit tests on SQLite, then end to end.
# Tables straight from the models (--no-migrations): Oscar's ~150 migrations take a minute.
oscar=(tests/oscar --no-migrations)
.venv/bin/python -m pytest "${oscar[@]}" -m "not e2e" --ds=tests.oscar.settings "$@" || status=$?
.venv/bin/python -m pytest "${oscar[@]}" -m e2e --ds=tests.oscar.settings_e2e "$@" || status=$?
exit "$status"
