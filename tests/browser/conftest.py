"""Headless Chromium (the system one) driven by Playwright's sync API against live_server.

Skipped with a message where /usr/bin/chromium (or PRODCAT_CHROMIUM) is missing; with
CI=true a missing browser fails the run instead. One browser serves the whole session.

- ``page``: a 1400 px wide page in the light theme.
- ``screen``: parametrized over the two ways a merchant sees the admin that these tests
  cover, a 1280 px desktop in the light theme and a 390 px phone in the dark theme; use
  ``shoot(page, name)`` to save a screenshot under ``tests/browser/artifacts/`` (not committed;
  ``PRODCAT_BROWSER_ARTIFACTS`` moves it) and ``assert_accessible(page)`` to run axe-core.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse
# database access from it ("SynchronousOnlyOperation").
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from tests.admin.conftest import (  # noqa: F401 - fixtures shared with the admin tests
    admin_urls,
    make_suggestion,
    media_root,
)
from tests.needs import missing

CHROMIUM = Path(os.environ.get("PRODCAT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM} (install Debian's chromium package)"
        missing(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


#: The screens the merchant tests run on: (name, viewport, colour scheme).
SCREENS = {
    "desktop-light": ({"width": 1280, "height": 900}, "light"),
    "phone-dark": ({"width": 390, "height": 844}, "dark"),
}
ARTIFACTS = Path(os.environ.get("PRODCAT_BROWSER_ARTIFACTS", Path(__file__).parent / "artifacts"))


@pytest.fixture(params=list(SCREENS))
def screen(request: Any, browser: Any) -> Iterator[Any]:
    """A page on one of :data:`SCREENS`; ``page.prodcat_screen`` names it."""
    viewport, scheme = SCREENS[request.param]
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.prodcat_screen = request.param
    page.prodcat_test = request.node.originalname
    yield page
    context.close()


def shoot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact; returns its path."""
    folder = ARTIFACTS / page.prodcat_screen
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


#: Impacts that fail a test; "minor" and "moderate" findings are reported, not fatal.
BLOCKING_IMPACTS = {"serious", "critical"}
AXE_REPORT = ARTIFACTS / "axe.txt"


def assert_accessible(page: Any, name: str) -> list[dict]:
    """Run axe-core on the page; fail on serious or critical violations. Every finding is
    appended to ``artifacts/axe.txt`` (screen, page, rule, impact, nodes)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations = results.response["violations"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with AXE_REPORT.open("a") as report:
        for v in violations:
            report.write(
                f"{page.prodcat_screen}\t{name}\t{v['id']}\t{v['impact']}\t{len(v['nodes'])}\n"
            )
        if not violations:
            report.write(f"{page.prodcat_screen}\t{name}\tnone\t-\t0\n")
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, results.generate_report()
    return violations
