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
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from prodcat_django import services
from prodcat_django.admin import batch_progress
from prodcat_django.admin.display import merchant_status
from prodcat_django.admin.product import ADMIN_MEDIA
from prodcat_django.models import SuggestionBatch, SuggestionDecision, SuggestionStatus

#: Seconds between refreshes of the batch progress page.
PROGRESS_REFRESH_SECONDS = 3


def _card_row(text: Any) -> str:
    # The class lets admin.css lay the list's rows out as cards when the list is narrow.
    return format_html('<span class="prodcat-card-row">{}</span>', text)


def _products(content_type: Any, count: int) -> str:
    """ "5 products" in the product model's own words (not "Testapp | product")."""
    model = content_type.model_class() if content_type is not None else None
    if model is None:
        return str(count)
    name = model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural
    return f"{count} {name}"


class SuggestionBatchAdmin(admin.ModelAdmin):
    # Few, short columns: nothing is pushed out of sight, and narrow lists become cards.
    list_display = ["batch", "products", "requested", "progress"]
    list_select_related = ["created_by", "content_type"]
    readonly_fields = ["content_type", "created_by", "created_at", "total", "label"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA + forms.Media(js=["prodcat_django/list_cards.js"])

    @admin.display(description=gettext_lazy("batch"), ordering="pk")
    def batch(self, obj: SuggestionBatch) -> str:
        return _card_row(obj)

    @admin.display(description=gettext_lazy("products"), ordering="total")
    def products(self, obj: SuggestionBatch) -> str:
        return _products(obj.content_type, obj.total)

    @admin.display(description=gettext_lazy("requested"), ordering="created_at")
    def requested(self, obj: SuggestionBatch) -> str:
        when = date_format(timezone.localtime(obj.created_at), "SHORT_DATETIME_FORMAT")
        who = obj.created_by.get_username() if obj.created_by else ""
        return _("%(when)s by %(who)s") % {"when": when, "who": who} if who else when

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

    list_display = ["decided_at", "action", "by", "product", "suggested"]
    list_filter = ["action", "created_at"]
    list_select_related = ["content_type"]
    search_fields = ["username", "object_id", "from_label"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA + forms.Media(js=["prodcat_django/list_cards.js"])

    @admin.display(description=gettext_lazy("decided at"), ordering="created_at")
    def decided_at(self, obj: SuggestionDecision) -> str:
        return _card_row(date_format(timezone.localtime(obj.created_at), "SHORT_DATETIME_FORMAT"))

    @admin.display(description=gettext_lazy("by"), ordering="username")
    def by(self, obj: SuggestionDecision) -> str:
        return obj.username if obj.is_human else _("automatically")

    @admin.display(description=gettext_lazy("product"), ordering="object_id")
    def product(self, obj: SuggestionDecision) -> str:
        model = obj.content_type.model_class() if obj.content_type_id else None
        name = model._meta.verbose_name if model is not None else _("product")
        return f"{name} {obj.object_id}"

    @admin.display(description=gettext_lazy("suggested"), ordering="from_label")
    def suggested(self, obj: SuggestionDecision) -> str:
        if obj.from_score is None:
            return obj.from_label
        return f"{obj.from_label} {obj.from_score:.0%}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
