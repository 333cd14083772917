"""The same web project without prodcat (and without the shop app that registers with it):
the baseline of the web RSS figure (7)."""

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import INSTALLED_APPS

INSTALLED_APPS = [
    app
    for app in INSTALLED_APPS
    if app not in ("prodcat_django", "tests.testapp", "tests.shapes", "mptt", "treebeard")
]
ROOT_URLCONF = "benchmarks.urls_noapp"
