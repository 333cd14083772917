"""The service layer: every entry point (signal, admin action, API view, command, Celery task)
calls these functions, so the rules live in one place; one module per job.

- :mod:`~prodcat_django.services.requests`: a product gets a new suggestion only when its
  inputs (title, image) changed, or on request; bulk requests work on primary keys in chunks.
- :mod:`~prodcat_django.services.dispatching`: tasks are sent after the transaction commits,
  and a slow or down broker never fails the caller (the row stays pending with
  ``dispatched_at`` unset; :func:`dispatch_pending` sends it later).
- :mod:`~prodcat_django.services.runs`: the worker writes a result once (idempotent), drops
  stale work, and never lets auto-accept overwrite a category a human decided; rows are held
  under a lease, and a crash, a hang or a database outage costs one product at most.
- :mod:`~prodcat_django.services.health`: what each worker last said about its model, and
  when it was last seen on prodcat's queue (its heartbeat).
- :mod:`~prodcat_django.services.review`: accept and reject (idempotent, conditional, never
  overwriting a human decision unless told to), and the audit trail.
- :mod:`~prodcat_django.services.inference`: synchronous ``suggest`` and the stored explanation.

Nothing here imports torch at module level; :func:`run_suggestions` and :func:`suggest` load
the model through :mod:`prodcat_django.classifier` when called. :func:`explain` never does: the
worker stores each suggestion's explanation beside its labels.
"""

from prodcat_django.services.dispatching import dispatch, dispatch_pending, stuck_suggestions
from prodcat_django.services.health import (
    expects_heartbeats,
    last_seen,
    worker_seen,
    workers_without_model,
)
from prodcat_django.services.inference import (
    StoredExplanation,
    explain,
    suggest,
    suggest_explained,
)
from prodcat_django.services.requests import (
    prefetch_current_suggestions,
    product_deleted,
    request_suggestion,
    request_suggestions,
    retry,
    unchanged_since_known,
)
from prodcat_django.services.review import (
    REVIEW_PERMISSION,
    accept,
    can_review,
    can_set_category,
    change_permission,
    decided_category_pk,
    human_decided_category,
    reject,
)
from prodcat_django.services.runs import (
    MAX_ATTEMPTS,
    MAX_CRASHES,
    ModelUnavailable,
    RunReport,
    release,
    run_suggestions,
)
from prodcat_django.services.warmup import start_warm_up, wait_for_warm_up, warm_up
from prodcat_django.timeouts import task_time_limits

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_CRASHES",
    "REVIEW_PERMISSION",
    "ModelUnavailable",
    "RunReport",
    "StoredExplanation",
    "accept",
    "can_review",
    "can_set_category",
    "change_permission",
    "decided_category_pk",
    "dispatch",
    "dispatch_pending",
    "expects_heartbeats",
    "explain",
    "human_decided_category",
    "last_seen",
    "prefetch_current_suggestions",
    "product_deleted",
    "reject",
    "release",
    "request_suggestion",
    "request_suggestions",
    "retry",
    "run_suggestions",
    "start_warm_up",
    "stuck_suggestions",
    "suggest",
    "suggest_explained",
    "task_time_limits",
    "unchanged_since_known",
    "wait_for_warm_up",
    "warm_up",
    "worker_seen",
    "workers_without_model",
]
