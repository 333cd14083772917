#!/usr/bin/env bash
# The example shop, on its embedded defaults: SQLite (var/db.sqlite3) and kombu's filesystem
# broker (var/broker/), so nothing beyond Python has to be installed or started.
# Sets up .venv (pinned), migrates, creates the demo superuser admin/admin (DEBUG only, once),
# starts one Celery worker (with the beat sweep that re-dispatches stuck suggestions) beside
# the development server, and stops the worker when the server stops.
#   HOST=0.0.0.0 PORT=8000 scripts/shop.sh
# Environment variables switch to PostgreSQL and Redis/RabbitMQ: see docs/example_shop.md.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup_env.sh base
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export DJANGO_SETTINGS_MODULE=example_shop.settings
mkdir -p var

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py shop_demo_user

.venv/bin/celery -A example_shop worker -B -Q prodcat,celery -c 1 --loglevel INFO \
    --schedule var/celerybeat-schedule >var/worker.log 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null' EXIT INT TERM
echo "Celery worker started (pid $worker, log var/worker.log)."
echo "Shop: http://${HOST:-127.0.0.1}:${PORT:-8000}/admin/  (user admin, password admin)"

.venv/bin/python manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
