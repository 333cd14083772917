"""A runnable shop that categorizes its products with prodcat_django.

The Celery app is imported here so ``shared_task``s bind to it in every process
(web and worker), as the Celery/Django guide recommends.
"""

from example_shop.celery import app as celery_app

__all__ = ["celery_app"]
