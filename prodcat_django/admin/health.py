"""The admin's health warning, shown on the product page, the review list and the admin index
with what to start:

- suggestions the sweep would send again (:func:`prodcat_django.services.stuck_suggestions`:
  never sent, or sent and not taken by any worker within ``DISPATCH_LEASE``, or running under
  a lease that ran out) once they are older than ``DISPATCH_LEASE``: no worker takes prodcat's
  queue, or the broker is down;
- workers whose last word (``WorkerHealth``) is that they cannot load the model;
- no worker seen on prodcat's queue (no heartbeat, :mod:`prodcat_django.worker`) for
  ``WORKER_LOST_AFTER`` seconds, whether or not suggestions wait (skipped with heartbeats off,
  or with ``task_always_eager``, where no worker is needed).

The warning is for staff: a worker's error is shown without the server's file paths (the
checkpoint's folder name stays; the worker's log and the row keep the whole text).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from prodcat_django import services
from prodcat_django.conf import prodcat_settings


def warning(admin_site: admin.AdminSite | None = None) -> dict[str, Any] | None:
    """``{"text", "hint", "command", "url"}`` when something is wrong, else None (two small
    queries)."""
    broken = list(services.workers_without_model()[:3])
    if broken:
        worker = broken[0]
        return {
            "text": _("Worker %(worker)s cannot load the model: %(error)s")
            % {"worker": worker.hostname, "error": without_paths(worker.error)},
            "hint": _(
                "Fix the checkpoint (manage.py prodcat_verify_checkpoint says what is "
                "wrong), then restart the worker:"
            ),
            "command": _worker_command(),
            "url": "",
        }
    grace = timedelta(seconds=float(prodcat_settings.DISPATCH_LEASE))
    stuck = services.stuck_suggestions().filter(created_at__lt=timezone.now() - grace).count()
    if services.expects_heartbeats() and not services.worker_seen():
        return _no_worker(stuck, _waiting_url(admin_site) if stuck else "")
    if not stuck:
        return None
    text = ngettext(
        "%(n)d suggestion is waiting and no worker has taken it: is a worker running on "
        "prodcat's queue?",
        "%(n)d suggestions are waiting and no worker has taken them: is a worker running on "
        "prodcat's queue?",
        stuck,
    ) % {"n": stuck}
    return {
        "text": text,
        "hint": _(
            "Start a worker on that queue (the periodic dispatch_pending task, or manage.py "
            "prodcat_dispatch_pending, then re-sends what waited):"
        ),
        "command": _worker_command(),
        "url": _waiting_url(admin_site),
    }


def _no_worker(stuck: int, url: str) -> dict[str, Any]:
    queue = prodcat_settings.QUEUE
    minutes = max(1, round(float(prodcat_settings.WORKER_LOST_AFTER) / 60))
    text = ngettext(
        "No worker is taking category suggestions: none has reported on the “%(queue)s” "
        "queue in the last minute.",
        "No worker is taking category suggestions: none has reported on the “%(queue)s” "
        "queue in the last %(minutes)d minutes.",
        minutes,
    ) % {"queue": queue, "minutes": minutes}
    if stuck:
        text += " " + ngettext(
            "%(n)d suggestion is waiting.", "%(n)d suggestions are waiting.", stuck
        ) % {"n": stuck}
    return {
        "text": text,
        "hint": _("Start one; what waits is suggested once it runs:"),
        "command": _worker_command(),
        "url": url,
    }


def _waiting_url(admin_site: admin.AdminSite | None) -> str:
    if admin_site is None:
        return ""
    try:
        base = reverse(f"{admin_site.name}:prodcat_django_categorysuggestion_changelist")
    except NoReverseMatch:
        return ""
    return f"{base}?{urlencode({'needs': 'waiting'})}"


def _worker_command() -> str:
    return f"celery -A <your project> worker -Q {prodcat_settings.QUEUE}"


# An absolute POSIX or Windows path, not inside a word ("3/4", "and/or"), up to a space,
# quote, colon or bracket.
_PATH = re.compile(r"""(?<![\w.~])(?:[A-Za-z]:\\|/)[^\s'"`:,;()\[\]]+""")


def without_paths(error: str) -> str:
    """``error`` with each absolute file path cut to its last two parts
    ("…/1.0.0/weights.safetensors"), so staff see which checkpoint and file without the
    server's folders."""
    if not error:
        return _("no reason given")

    def short(match: re.Match[str]) -> str:
        parts = [p for p in re.split(r"[/\\]", match.group(0).rstrip("/\\.")) if p]
        return "…/" + "/".join(parts[-2:]) if parts else match.group(0)

    return _PATH.sub(short, error)
