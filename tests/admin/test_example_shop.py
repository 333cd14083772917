"""The example shop: its environment parsing, demo-user command, and that the project itself
migrates and passes its checks (in a subprocess, with its own settings and a temporary var/).

The shop's modules are loaded from their files: importing the ``example_shop`` package would
create its Celery app and make it Celery's current app for the rest of this test session.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

REPO = Path(__file__).resolve().parents[2]


def load(relative: str) -> ModuleType:
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(f"shop_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


env = load("example_shop/env.py")
database_from_url, env_bool = env.database_from_url, env.env_bool


def test_postgres_url(tmp_path):
    db = database_from_url(
        "postgres://shop:p%40ss@db.internal:6543/catalog?sslmode=require", base_dir=tmp_path
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("catalog", "shop", "p@ss")
    assert (db["HOST"], db["PORT"]) == ("db.internal", "6543")
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_sqlite_urls_relative_and_absolute(tmp_path):
    relative = database_from_url("sqlite:///var/x.sqlite3", base_dir=tmp_path)
    assert relative["NAME"] == tmp_path / "var" / "x.sqlite3"
    absolute = database_from_url(f"sqlite:///{tmp_path}/abs.sqlite3", base_dir=Path("/nowhere"))
    assert absolute["NAME"] == tmp_path / "abs.sqlite3"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgres://u@h:5432/"])
def test_bad_database_urls_are_clear_errors(url, tmp_path):
    with pytest.raises(ImproperlyConfigured, match=r"(?i)database"):
        database_from_url(url, base_dir=tmp_path)


def test_env_bool(monkeypatch):
    monkeypatch.setenv("SHOP_FLAG", "off")
    assert env_bool("SHOP_FLAG", True) is False
    monkeypatch.setenv("SHOP_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SHOP_FLAG"):
        env_bool("SHOP_FLAG", True)


@pytest.mark.django_db
def test_shop_demo_user_only_in_debug_and_only_once(settings, django_user_model):
    Command = load("example_shop/catalog/management/commands/shop_demo_user.py").Command

    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command(Command())
    assert not django_user_model.objects.exists()

    settings.DEBUG = True
    call_command(Command())
    call_command(Command())  # idempotent
    admin = django_user_model.objects.get()
    assert admin.username == "admin" and admin.is_superuser and admin.check_password("admin")


def test_the_shop_migrates_and_passes_its_checks(tmp_path, prodcat_checkpoint):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_shop.settings",
        "SHOP_VAR_DIR": str(tmp_path / "var"),
        "PRODCAT_CHECKPOINT": str(prodcat_checkpoint),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("PRODCAT_SHOP_DB", None)
    env.pop("CELERY_BROKER_URL", None)

    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    manage("makemigrations", "--check", "--dry-run")
    manage("migrate", "--noinput")
    assert "Created superuser" in manage("shop_demo_user")
    manage("check")
    docs = manage(
        "shell",
        "-c",
        "from django.test import Client; c = Client(); "
        "c.force_login(__import__('django.contrib.auth', fromlist=['x']).get_user_model()"
        ".objects.get(username='admin')); "
        "r = c.get('/api/docs/', HTTP_HOST='localhost'); print(r.status_code); "
        "print(r.content.decode())",
    )
    assert "\n200\n" in f"\n{docs}"
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs
    assert "cdn." not in docs and "jsdelivr" not in docs  # nothing from a CDN
    assert (tmp_path / "var" / "db.sqlite3").exists()
    assert (tmp_path / "var" / "broker" / "queue").is_dir()  # the filesystem broker's folder
    categories = manage(
        "shell",
        "-c",
        "from example_shop.catalog.models import Category as C; "
        "print(sorted(C.objects.values_list('name', flat=True)))",
    )
    for name in ("Tshirts", "Casual Shoes", "Flip Flops", "Belts"):
        assert f"'{name}'" in categories
    assert categories.count("'") == 32  # the 16 fashion16 labels
