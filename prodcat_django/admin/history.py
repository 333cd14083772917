"""Admin pages for the records around suggestions: bulk-request batches (with the progress
page the "Suggest categories" action links to) and the append-only decision audit trail.
Registered on ``admin.site`` by :mod:`prodcat_django.admin`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from prodcat_django import services
from prodcat_django.admin import batch_progress
from prodcat_django.admin.display import merchant_status
from prodcat_django.admin.product import ADMIN_MEDIA
from prodcat_django.models import SuggestionBatch, SuggestionStatus

#: Seconds between refreshes of the batch progress page.
PROGRESS_REFRESH_SECONDS = 3


class SuggestionBatchAdmin(admin.ModelAdmin):
    list_display = ["__str__", "content_type", "total", "created_by", "created_at", "progress"]
    list_select_related = ["created_by", "content_type"]
    readonly_fields = ["content_type", "created_by", "created_at", "total", "label"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, obj: SuggestionBatch) -> str:
        url = reverse(
            f"{self.admin_site.name}:prodcat_django_suggestionbatch_progress", args=[obj.pk]
        )
        return format_html('<a href="{}">{}</a>', url, _("Watch progress"))

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="prodcat_django_suggestionbatch_progress",
            ),
            *batch_progress.urls(self),
            *super().get_urls(),
        ]

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Counts of the batch's suggestions by status; refreshes itself until finished.
        Visible to whoever queued the batch and to users who may view batches."""
        batch = get_object_or_404(
            SuggestionBatch.objects.select_related("created_by"), pk=unquote(object_id)
        )
        if not (
            self.has_view_permission(request, batch)
            or (request.user.is_authenticated and batch.created_by_id == request.user.pk)
        ):
            raise PermissionDenied
        progress = batch.progress()
        total = max(progress["total"], sum(progress[s] for s in SuggestionStatus.values))
        review_base = reverse(
            f"{self.admin_site.name}:prodcat_django_categorysuggestion_changelist"
        )
        rows = [
            {
                "label": merchant_status(status.value),
                "count": progress[status.value],
                "url": f"{review_base}?{urlencode({'batch': batch.pk, 'status__exact': status})}"
                if progress[status.value]
                else "",
            }
            for status in SuggestionStatus
        ]
        failed = progress[SuggestionStatus.FAILED]
        pending = progress[SuggestionStatus.PENDING]
        running = progress[SuggestionStatus.RUNNING]
        settled = progress["done"]
        confident = batch_progress.confident(batch).count()

        def pct(n: int) -> str:
            return f"{100 * n / total:.2f}" if total else "0"

        context = {
            **self.admin_site.each_context(request),
            "title": _("Progress of %(batch)s") % {"batch": batch},
            "opts": self.model._meta,
            "media": self.media,
            "batch": batch,
            "requested_by": batch.created_by.get_username() if batch.created_by else _("a script"),
            "rows": rows,
            "total": total,
            "settled": settled,
            "finished": progress["finished"],
            "done_pct": pct(settled - failed),
            "failed_pct": pct(failed),
            "running_pct": pct(running),
            "pending_pct": pct(pending),
            "running": running,
            "pending": pending,
            "pace": batch_progress.pace(batch, settled, total),
            "confident": confident,
            "threshold_pct": round(batch_progress.threshold() * 100),
            "can_review": services.can_review(request.user),
            "accept_url": reverse(
                f"{self.admin_site.name}:prodcat_django_suggestionbatch_accept_confident",
                args=[batch.pk],
            ),
            "refresh_seconds": PROGRESS_REFRESH_SECONDS,
            "review_url": f"{review_base}?{urlencode({'batch': batch.pk})}",
        }
        return TemplateResponse(request, "admin/prodcat_django/batch_progress.html", context)


# --------------------------------------------------------------------------- audit trail


class SuggestionDecisionAdmin(admin.ModelAdmin):
    """The append-only audit trail: viewable, never editable."""

    list_display = ["created_at", "action", "username", "content_type", "object_id", "from_label"]
    list_filter = ["action", "created_at"]
    list_select_related = ["content_type"]
    search_fields = ["username", "object_id", "from_label"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
