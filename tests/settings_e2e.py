"""Settings of the end-to-end tests: ``pytest -m e2e --ds=tests.settings_e2e``.

``tests.settings`` with real services instead of stand-ins:

- PostgreSQL (127.0.0.1:5432, user postgres) as the database. pytest-django creates
  ``test_prodcat_e2e_<run>``; the Celery worker the tests start gets that name through
  ``PRODCAT_E2E_DB_NAME`` so it reads and writes the rows the tests commit.
- Redis (a dedicated DB, 13) as the broker, no eager mode: tasks cross a real broker to a real
  worker process. ``PRODCAT_E2E_BROKER_URL`` switches it (the RabbitMQ test does).
- ``<run>`` (``PRODCAT_E2E_RUN_ID``, default the pytest process id) also names the queue, so
  two runs on one machine (developers, parallel CI jobs) never share a database or steal each
  other's tasks; the run deletes its queue at the end. (Flushing the Redis DB at the start
  instead would break a concurrent run.)
- The shipped checkpoint (``PRODCAT_E2E_CHECKPOINT`` may name another one).
- A temporary MEDIA_ROOT per run, shared with the worker (``PRODCAT_E2E_MEDIA_ROOT``).

Every ``PRODCAT_E2E_*`` variable below has a default matching the services of a developer
machine or CI job; set them to point elsewhere.
"""

import os
import tempfile

from tests.settings import *  # noqa: F403
from tests.settings import PRODCAT

#: Marks these settings; the e2e tests skip (saying how to run them) under any others.
PRODCAT_E2E = True
#: Isolates this run's database and queue; the worker inherits it from the test process.
PRODCAT_E2E_RUN_ID = os.environ.get("PRODCAT_E2E_RUN_ID") or str(os.getpid())

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        # The pytest process connects to NAME only to create TEST.NAME; the worker is given
        # TEST.NAME itself.
        "NAME": os.environ.get("PRODCAT_E2E_DB_NAME", "postgres"),
        "HOST": os.environ.get("PRODCAT_E2E_PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PRODCAT_E2E_PGPORT", "5432"),
        "USER": os.environ.get("PRODCAT_E2E_PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PRODCAT_E2E_PGPASSWORD", ""),
        "TEST": {"NAME": f"test_prodcat_e2e_{PRODCAT_E2E_RUN_ID}"},
    }
}

# A dedicated Redis database, so flushing it at the start touches nothing else.
PRODCAT_E2E_REDIS_URL = os.environ.get("PRODCAT_E2E_REDIS_URL", "redis://127.0.0.1:6379/13")
PRODCAT_E2E_AMQP_URL = os.environ.get("PRODCAT_E2E_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
CELERY_BROKER_URL = os.environ.get("PRODCAT_E2E_BROKER_URL", PRODCAT_E2E_REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# One task at a time per worker process: a bulk chunk is already a batch.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

PRODCAT = {
    **PRODCAT,
    "CHECKPOINT": os.environ.get("PRODCAT_E2E_CHECKPOINT") or None,  # None: the shipped one
    # A slow broker must not stall the test process for long (the broker-down scenario).
    "BROKER_TIMEOUT": 2.0,
    "QUEUE": f"prodcat_e2e_{PRODCAT_E2E_RUN_ID}",
    # A quick heartbeat, so the heartbeat test sees a worker come and go in seconds.
    "WORKER_HEARTBEAT": float(os.environ.get("PRODCAT_E2E_WORKER_HEARTBEAT", "1")),
    "WORKER_LOST_AFTER": float(os.environ.get("PRODCAT_E2E_WORKER_LOST_AFTER", "5")),
}

# Not created here (storage creates it on the first upload), so importing these settings
# leaves nothing behind; the e2e session removes it at the end.
MEDIA_ROOT = os.environ.get("PRODCAT_E2E_MEDIA_ROOT") or os.path.join(
    tempfile.gettempdir(), f"prodcat-e2e-media-{PRODCAT_E2E_RUN_ID}"
)
PRODCAT_E2E_MEDIA_IS_TEMPORARY = "PRODCAT_E2E_MEDIA_ROOT" not in os.environ

# The admin (with the test shop's product admin) and the API.
ROOT_URLCONF = "tests.e2e.urls"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"prodcat_django": {"handlers": ["console"], "level": "INFO"}},
}
