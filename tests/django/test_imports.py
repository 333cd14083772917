"""The web process never imports torch: importing the app's modules must not pull it in."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Every module a web process imports: models, signals, tasks, checks, admin, API, commands.
PROBE = r"""
import importlib, json, pkgutil, sys
import django
django.setup()
import prodcat_django
names = []
for info in pkgutil.walk_packages(prodcat_django.__path__, "prodcat_django."):
    if info.name.startswith("prodcat_django.ml.") and info.name not in (
        "prodcat_django.ml.manifest", "prodcat_django.ml.images"
    ):
        continue  # the classifier's torch modules, for workers only
    if info.name.startswith("prodcat_django.migrations"):
        continue
    if info.name.startswith("prodcat_django.contrib."):
        continue  # add-ons need their framework's apps: tests/oscar checks the Oscar one
    importlib.import_module(info.name)
    names.append(info.name)
from django.core import checks
checks.run_checks(tags=["prodcat"])
from django.core.management import call_command
import io
call_command("check", stdout=io.StringIO())
print(json.dumps({"imported": names, "torch": "torch" in sys.modules}))
"""


def test_importing_the_app_never_imports_torch(prodcat_checkpoint):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(REPO),
        "PRODCAT_TEST_CHECKPOINT": str(prodcat_checkpoint),  # checks verify it, without torch
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for expected in (
        "prodcat_django.models",
        "prodcat_django.signals",
        "prodcat_django.tasks",
        "prodcat_django.services",
        "prodcat_django.checks",
        "prodcat_django.classifier",
        "prodcat_django.management.commands.prodcat_backfill",
        "prodcat_django.admin",
        "prodcat_django.api.views",
    ):
        assert expected in result["imported"]
    assert result["torch"] is False, "a module of prodcat_django imported torch"
