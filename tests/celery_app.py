"""The test project's Celery app, configured from Django settings (``CELERY_*``).

The e2e tests start real workers with ``celery -A tests.celery_app worker -Q prodcat``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
