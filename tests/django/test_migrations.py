"""Migrations are complete, also when the shop's DEFAULT_AUTO_FIELD is BigAutoField."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_makemigrations_check_is_clean():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.parametrize(
    "auto_field", ["django.db.models.BigAutoField", "django.db.models.AutoField"]
)
def test_makemigrations_check_under_another_default_auto_field(
    auto_field, tmp_path, prodcat_checkpoint
):
    # DEFAULT_AUTO_FIELD is read when models are built, so it needs a fresh process.
    (tmp_path / "autofield_settings.py").write_text(
        f"from tests.settings import *  # noqa\nDEFAULT_AUTO_FIELD = {auto_field!r}\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "autofield_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "PRODCAT_TEST_CHECKPOINT": str(prodcat_checkpoint),  # for the system checks
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "makemigrations",
            "--check",
            "--dry-run",
            "prodcat_django",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes detected" in done.stdout
