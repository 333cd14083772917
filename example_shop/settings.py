"""Settings of the example shop.

Embedded by default: SQLite at ``var/db.sqlite3``, kombu's filesystem broker under
``var/broker/`` and uploads under ``var/media/``, so nothing has to be installed. Environment
variables switch to production services (see docs/example_shop.md):

- ``PRODCAT_SHOP_DB``: ``postgres://user:password@host:5432/name`` (or ``sqlite:///path``)
- ``CELERY_BROKER_URL``: ``redis://host:6379/0`` or ``amqp://user:password@host:5672//``
- ``DJANGO_DEBUG``, ``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS``, ``PRODCAT_CHECKPOINT``
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from example_shop.env import database_from_url, env_bool, env_list, sqlite_database

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SHOP_VAR_DIR", BASE_DIR / "var"))

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is off.")
    SECRET_KEY = "example-shop-insecure-development-key"  # DEBUG only
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI and Redoc served from the shop's own static files (no CDN).
    "drf_spectacular_sidecar",
    "prodcat_django",
    "example_shop.catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_shop.urls"
WSGI_APPLICATION = "example_shop.wsgi.application"

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

_db_url = os.environ.get("PRODCAT_SHOP_DB", "").strip()
DATABASES = {
    "default": database_from_url(_db_url, base_dir=BASE_DIR)
    if _db_url
    else sqlite_database(VAR_DIR / "db.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
# Product photos are decoded by the worker; refuse oversized uploads at the door.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Celery -----------------------------------------------------------------------------
# Default broker: kombu's filesystem transport, a folder both processes share. Producer and
# consumer use the same folder; processed messages are deleted.
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange bindings (fanout, pidbox); kombu would otherwise write them to ./control.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# Suggestions are written to the database by the tasks; Celery results are not needed.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ROUTES = {"prodcat.*": {"queue": "prodcat"}}
# One model per worker process, a few hundred MB: recycle rarely, prefetch little.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
# The sweep every 10 s sends what a dead worker or a lost message left (leases of 20 s), so
# recovery takes well under a minute; expires drops a sweep that waited longer than that.
CELERY_BEAT_SCHEDULE = {
    "prodcat-dispatch-pending": {
        "task": "prodcat.dispatch_pending",
        "schedule": 10.0,
        "options": {"queue": "prodcat", "expires": 10.0},
    },
}

# --- prodcat_django -----------------------------------------------------------------------
PRODCAT = {
    # Shipped checkpoint unless overridden (a directory holding manifest.json).
    "CHECKPOINT": os.environ.get("PRODCAT_CHECKPOINT") or None,
    "QUEUE": "prodcat",
    "BULK_CONFIRM_THRESHOLD": 200,
}

# --- DRF --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_RATES": {"prodcat": "60/minute", "prodcat_suggest": "30/minute"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Example shop: prodcat API",
    "DESCRIPTION": "Category suggestions for the shop's products.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"prodcat_django": {"handlers": ["console"], "level": "INFO"}},
}
