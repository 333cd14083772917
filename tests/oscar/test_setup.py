"""Installing the add-on: its system checks and its dashboard menu entry."""

from __future__ import annotations

import pytest
from django.core import checks

from prodcat_django.contrib.oscar.navigation import LIST_URL_NAME, with_suggestions_menu


def prodcat_oscar_messages() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks() if m.id.startswith("prodcat_oscar.")]


def test_the_test_project_is_set_up_as_documented():
    assert prodcat_oscar_messages() == []


def test_a_product_form_template_that_is_not_the_add_ons_is_reported(settings, tmp_path):
    # A shop template (or an INSTALLED_APPS order) that wins over the add-on's product form.
    template = tmp_path / "oscar" / "dashboard" / "catalogue" / "product_update.html"
    template.parent.mkdir(parents=True)
    template.write_text("<form id='create_update_product_form'></form>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    [warning] = prodcat_oscar_messages()
    assert warning.id == "prodcat_oscar.W001"
    assert str(template) in warning.msg


def test_the_menu_entry_goes_after_products_once():
    from oscar.defaults import OSCAR_DASHBOARD_NAVIGATION

    menu = with_suggestions_menu(with_suggestions_menu(OSCAR_DASHBOARD_NAVIGATION))
    names = [c.get("url_name") for item in menu for c in item.get("children", ())]
    assert names.count(LIST_URL_NAME) == 1
    assert names[names.index("dashboard:catalogue-product-list") + 1] == LIST_URL_NAME
    assert OSCAR_DASHBOARD_NAVIGATION is not menu
    assert all(
        c.get("url_name") != LIST_URL_NAME
        for item in OSCAR_DASHBOARD_NAVIGATION
        for c in item.get("children", ())
    ), "Oscar's default menu is left as it was"


def test_a_menu_without_oscars_products_item_gets_a_top_level_entry():
    menu = with_suggestions_menu([{"label": "Dashboard", "url_name": "dashboard:index"}])
    assert [item["url_name"] for item in menu] == ["dashboard:index", LIST_URL_NAME]


@pytest.mark.django_db
def test_the_review_page_is_checked_like_oscars_own_dashboard_pages(reviewer):
    # Oscar's default_access_fn finds the add-on's URLs too (it is an OscarDashboardConfig).
    from oscar.apps.dashboard.nav import default_access_fn

    from tests.oscar.conftest import make_staff

    assert default_access_fn(reviewer, LIST_URL_NAME) is True
    assert default_access_fn(make_staff("clerk"), LIST_URL_NAME) is False


def test_the_add_on_never_imports_torch_in_the_web_process(prodcat_checkpoint):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    probe = (
        "import importlib, json, pkgutil, sys, django\n"
        "django.setup()\n"
        "import prodcat_django.contrib.oscar as addon\n"
        "names = [i.name for i in pkgutil.walk_packages(addon.__path__, addon.__name__ + '.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "from django.core.management import call_command\n"
        "call_command('check')\n"
        "print(json.dumps({'imported': names, 'torch': 'torch' in sys.modules}))\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.oscar.settings",
        "PYTHONPATH": str(repo),
        "PRODCAT_TEST_CHECKPOINT": str(prodcat_checkpoint),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "prodcat_django.contrib.oscar.views" in result["imported"]
    assert result["torch"] is False
