"""Settings of the test project (pytest-django: ``DJANGO_SETTINGS_MODULE=tests.settings``).

Defaults suit the unit tests: SQLite, Celery in eager mode, a tiny random-weight checkpoint.
Environment variables let the e2e tests reuse this module with real services:

- ``PRODCAT_TEST_DB=postgres`` (+ ``PRODCAT_TEST_DB_NAME/HOST/PORT/USER/PASSWORD``)
- ``PRODCAT_TEST_BROKER_URL`` (e.g. ``redis://127.0.0.1:6379/15``) and ``PRODCAT_TEST_EAGER=0``
- ``PRODCAT_TEST_CHECKPOINT``: a checkpoint directory ("shipped" = the package's own)
"""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "prodcat-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
# Surface programming errors in prodcat's signal receivers instead of logging them.
DEBUG_PROPAGATE_EXCEPTIONS = os.environ.get("PRODCAT_TEST_PROPAGATE", "1") == "1"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "prodcat_django",
    "tests.testapp",
    # The plain-shop shapes (tests/shapes) and the tree libraries two of them use.
    "mptt",
    "treebeard",
    "tests.shapes",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.testapp.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if os.environ.get("PRODCAT_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PRODCAT_TEST_DB_NAME", "prodcat"),
            "HOST": os.environ.get("PRODCAT_TEST_DB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("PRODCAT_TEST_DB_PORT", "5432"),
            "USER": os.environ.get("PRODCAT_TEST_DB_USER", "postgres"),
            "PASSWORD": os.environ.get("PRODCAT_TEST_DB_PASSWORD", ""),
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

# The test app keeps AutoField; prodcat sets its own in its AppConfig, and the migration test
# checks it under BigAutoField too.
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
MEDIA_URL = "media/"
# conftest points this at a per-test temporary directory.
MEDIA_ROOT = os.path.join(tempfile.gettempdir(), "prodcat-test-media")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only

# Eager Celery is for the unit tests ONLY (tasks run inline in the saving process); the e2e
# tests set PRODCAT_TEST_EAGER=0 and run a real worker on a real broker.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("PRODCAT_TEST_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = os.environ.get("PRODCAT_TEST_BROKER_URL", "memory://")
CELERY_TASK_DEFAULT_QUEUE = "celery"

# CHECKPOINT is filled in by conftest (a tiny random checkpoint built once per session) unless
# PRODCAT_TEST_CHECKPOINT names one.
PRODCAT = {
    "CHECKPOINT": os.environ.get("PRODCAT_TEST_CHECKPOINT") or None,
    "TASK_BATCH_SIZE": 4,
    "BULK_CHUNK_SIZE": 5,
    "BROKER_TIMEOUT": 1.0,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"prodcat_django": {"handlers": ["console"], "level": "WARNING"}},
}

# The test process is one process, so the per-process cache is right here; a shop with several
# web processes gets prodcat.W011 for it (tests/django/test_checks.py checks that).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SILENCED_SYSTEM_CHECKS = ["prodcat.W011"]
