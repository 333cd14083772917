"""Settings of the fault-injection suite: ``pytest -m faults --ds=tests.settings_faults``.

``tests.settings_e2e`` (real PostgreSQL, a real worker, per-run database and queue), with the
broker a private Redis the tests start, kill and freeze (``PRODCAT_E2E_BROKER_URL``, set by the
suite), the tiny random checkpoint (``PRODCAT_E2E_CHECKPOINT``), and the sweep on beat every
10 s as docs/reliability.md recommends. The leases are prodcat's defaults; only
``TIME_LIMIT_PER_PRODUCT`` is shortened (2 s) so the hanging-input test takes seconds.
"""

from tests.settings_e2e import *  # noqa: F403
from tests.settings_e2e import PRODCAT

#: Marks these settings; the fault tests skip (saying how to run them) under any others.
PRODCAT_FAULTS = True

PRODCAT = {**PRODCAT, "TIME_LIMIT_PER_PRODUCT": 2.0}

CELERY_BEAT_SCHEDULE = {
    "prodcat-dispatch-pending": {
        "task": "prodcat.dispatch_pending",
        "schedule": 10.0,
        "options": {"queue": PRODCAT["QUEUE"], "expires": 10.0},
    },
}
