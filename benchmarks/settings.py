"""Django settings of ``python -m benchmarks``: the test shop on PostgreSQL and Redis.

Every ``PRODCAT_BENCH_*`` variable is set by the benchmark for the processes it starts (the
Celery workers, the web probes); the defaults suit a developer machine.
"""

import os
import tempfile

from prodcat_django.conf import DEFAULTS
from tests.settings import *  # noqa: F403

RUN_ID = os.environ.get("PRODCAT_BENCH_RUN_ID") or str(os.getpid())

if os.environ.get("PRODCAT_BENCH_DB") == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get(
                "PRODCAT_BENCH_DB_NAME", os.path.join(tempfile.gettempdir(), f"bench{RUN_ID}.db")
            ),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PRODCAT_BENCH_DB_NAME", f"prodcat_bench_{RUN_ID}"),
            "HOST": os.environ.get("PRODCAT_BENCH_PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PRODCAT_BENCH_PGPORT", "5432"),
            "USER": os.environ.get("PRODCAT_BENCH_PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PRODCAT_BENCH_PGPASSWORD", ""),
        }
    }

CELERY_BROKER_URL = os.environ.get("PRODCAT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
DEBUG_PROPAGATE_EXCEPTIONS = True

# The shipped model and the library's own batch/chunk sizes (tests.settings shrinks them).
PRODCAT = {
    "CHECKPOINT": os.environ.get("PRODCAT_BENCH_CHECKPOINT") or None,
    "TASK_BATCH_SIZE": DEFAULTS["TASK_BATCH_SIZE"],
    "BULK_CHUNK_SIZE": int(os.environ.get("PRODCAT_BENCH_CHUNK") or DEFAULTS["BULK_CHUNK_SIZE"]),
    "QUEUE": f"prodcat_bench_{RUN_ID}",
    "API_THROTTLE_RATE": None,  # measure the endpoint, not the limiter
    "BROKER_TIMEOUT": 2.0,
}
if os.environ.get("PRODCAT_BENCH_WARM_UP_WEB") == "1":
    PRODCAT["WARM_UP_WEB"] = True

MEDIA_ROOT = os.environ.get("PRODCAT_BENCH_MEDIA_ROOT") or os.path.join(
    tempfile.gettempdir(), f"prodcat-bench-media-{RUN_ID}"
)
ROOT_URLCONF = "tests.e2e.urls"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"prodcat_django": {"handlers": ["console"], "level": "INFO"}},
}
