"""The shop's Celery app, configured from Django settings (the ``CELERY_*`` names).

Start a worker on prodcat's queue with::

    celery -A example_shop worker -Q prodcat -P solo

and the periodic sweep (re-dispatches suggestions left pending while the broker was down) with::

    celery -A example_shop beat
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_shop.settings")

app = Celery("example_shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
