# The test project's Celery app, imported here the way a Django project's __init__.py does.
from tests.celery_app import app as celery_app

__all__ = ["celery_app"]
