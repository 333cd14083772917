"""The admin's health warning, shown on the product page, the review list and the admin index
with what to start:

- suggestions the sweep would send again (:func:`prodcat_django.services.stuck_suggestions`:
  never sent, or sent and not taken by any worker within ``DISPATCH_LEASE``, or running under
  a lease that ran out) once they are older than ``DISPATCH_LEASE``: no worker takes prodcat's
  queue, or the broker is down;
- workers whose last word (``WorkerHealth``) is that they cannot load the model.
"""

from __future__ import annotations

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
            % {"worker": worker.hostname, "error": worker.error or _("no reason given")},
            "hint": _(
                "Fix the checkpoint (manage.py prodcat_verify_checkpoint says what is "
                "wrong), then restart the worker:"
            ),
            "command": _worker_command(),
            "url": "",
        }
    grace = timedelta(seconds=float(prodcat_settings.DISPATCH_LEASE))
    stuck = services.stuck_suggestions().filter(created_at__lt=timezone.now() - grace).count()
    if not stuck:
        return None
    text = ngettext(
        "%(n)d suggestion is waiting and no worker has taken it: is a worker running on "
        "prodcat's queue?",
        "%(n)d suggestions are waiting and no worker has taken them: is a worker running on "
        "prodcat's queue?",
        stuck,
    ) % {"n": stuck}
    url = ""
    if admin_site is not None:
        try:
            base = reverse(f"{admin_site.name}:prodcat_django_categorysuggestion_changelist")
        except NoReverseMatch:
            pass
        else:
            url = f"{base}?{urlencode({'needs': 'waiting'})}"
    return {
        "text": text,
        "hint": _(
            "Start a worker on that queue (the periodic dispatch_pending task, or manage.py "
            "prodcat_dispatch_pending, then re-sends what waited):"
        ),
        "command": _worker_command(),
        "url": url,
    }


def _worker_command() -> str:
    return f"celery -A <your project> worker -Q {prodcat_settings.QUEUE}"
