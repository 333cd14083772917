"""The fault suite's Celery app: the test project's, plus inputs that misbehave on purpose.

In every pool process (before its first task), ``Predictor.explain_many`` is wrapped so
that a title containing ``CRASH`` ends the process (``os._exit``, as a segfault in a decoder
would), ``HANG`` sleeps for an hour (an input that hangs the model) and ``SLOW`` takes half
a second per pass (so a test can kill the worker mid-pass). Nothing of this is in the app:
only this test worker loads it.
"""

import os
import time

from celery.signals import task_prerun

from tests.celery_app import app

__all__ = ["app"]


@task_prerun.connect
def _misbehaving_inputs(**kwargs):
    # Before each task, not at process start: importing torch there would outlast billiard's
    # wait for a new pool process.
    from prodcat_django.ml.predictor import Predictor

    original = Predictor.explain_many
    if getattr(original, "misbehaves", False):
        return

    def explain_many(self, items, **options):
        titles = " ".join(item.title for item in items)
        if "CRASH" in titles:
            os._exit(1)
        if "HANG" in titles:
            time.sleep(3600)
        if "SLOW" in titles:
            time.sleep(0.5)
        return original(self, items, **options)

    explain_many.misbehaves = True
    Predictor.explain_many = explain_many
