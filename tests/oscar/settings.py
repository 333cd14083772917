"""Settings of the django-oscar test project: ``pytest tests/oscar --ds=tests.oscar.settings``.

A stock Oscar 4.2 shop set up as Oscar's documentation says (its apps, middleware, context
processors, haystack's simple backend, sorl-thumbnail), plus ``prodcat_django`` and the add-on
``prodcat_django.contrib.oscar``, listed before Oscar's apps so its dashboard templates come
first. SQLite in memory and eager Celery for the unit tests; ``tests.oscar.settings_e2e``
switches to PostgreSQL, Redis and a real worker.
"""

import os
import tempfile
from pathlib import Path

from oscar import INSTALLED_APPS as OSCAR_INSTALLED_APPS
from oscar.defaults import *  # noqa: F403

from prodcat_django.contrib.oscar.navigation import with_suggestions_menu

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "prodcat-oscar-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
DEBUG_PROPAGATE_EXCEPTIONS = os.environ.get("PRODCAT_TEST_PROPAGATE", "1") == "1"
SITE_ID = 1

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "prodcat_django",
    # Before Oscar's apps: its templates extend Oscar's dashboard templates of the same name.
    "prodcat_django.contrib.oscar",
    *[app for app in OSCAR_INSTALLED_APPS if not app.startswith("django.")],
    "sorl.thumbnail",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "tests.oscar.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    },
]

HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}

if os.environ.get("PRODCAT_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PRODCAT_TEST_DB_NAME", "prodcat"),
            "HOST": os.environ.get("PRODCAT_TEST_DB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("PRODCAT_TEST_DB_PORT", "5432"),
            "USER": os.environ.get("PRODCAT_TEST_DB_USER", "postgres"),
            "PASSWORD": os.environ.get("PRODCAT_TEST_DB_PASSWORD", ""),
            "ATOMIC_REQUESTS": True,
        }
    }
else:
    # ATOMIC_REQUESTS as in a production Oscar shop: the dashboard's product form saves the
    # product, then its image formset, in one request.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:",
            "ATOMIC_REQUESTS": True,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
MEDIA_URL = "media/"
# conftest points this at a per-test temporary directory.
MEDIA_ROOT = os.path.join(tempfile.gettempdir(), "prodcat-oscar-test-media")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only

CELERY_TASK_ALWAYS_EAGER = os.environ.get("PRODCAT_TEST_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = os.environ.get("PRODCAT_TEST_BROKER_URL", "memory://")
CELERY_TASK_DEFAULT_QUEUE = "celery"

PRODCAT = {
    "CHECKPOINT": os.environ.get("PRODCAT_TEST_CHECKPOINT") or None,
    "TASK_BATCH_SIZE": 4,
    "BULK_CHUNK_SIZE": 5,
    "BROKER_TIMEOUT": 1.0,
}

# The add-on's entry in Oscar's dashboard menu, under "Catalogue".
OSCAR_DASHBOARD_NAVIGATION = with_suggestions_menu(OSCAR_DASHBOARD_NAVIGATION)  # noqa: F405

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"prodcat_django": {"handlers": ["console"], "level": "WARNING"}},
}
