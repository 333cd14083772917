"""The Oscar project end to end: ``pytest tests/oscar -m e2e --ds=tests.oscar.settings_e2e``.

``tests.oscar.settings`` with the real services of ``tests.settings_e2e`` (PostgreSQL, the
dedicated Redis database as broker, a per-run queue and media root, the shipped checkpoint);
the Celery worker the tests start loads these settings too. Its own test database name, so it
never meets the main e2e run's.
"""

from tests.oscar.settings import *  # noqa: F403
from tests.settings_e2e import (  # noqa: F401 - settings, read by Django and the e2e fixtures
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP,
    CELERY_BROKER_URL,
    CELERY_TASK_ALWAYS_EAGER,
    CELERY_TASK_EAGER_PROPAGATES,
    CELERY_WORKER_PREFETCH_MULTIPLIER,
    LOGGING,
    MEDIA_ROOT,
    PRODCAT,
    PRODCAT_E2E,
    PRODCAT_E2E_AMQP_URL,
    PRODCAT_E2E_MEDIA_IS_TEMPORARY,
    PRODCAT_E2E_REDIS_URL,
    PRODCAT_E2E_RUN_ID,
)
from tests.settings_e2e import DATABASES as _E2E_DATABASES

# NAME comes from PRODCAT_E2E_DB_NAME in the worker (it is given TEST.NAME itself).
DATABASES = {
    "default": {
        **_E2E_DATABASES["default"],
        "ATOMIC_REQUESTS": True,
        "TEST": {"NAME": f"test_prodcat_oscar_e2e_{PRODCAT_E2E_RUN_ID}"},
    }
}
