"""The review list built for speed: what needs review by default, search by product title,
the product's current category beside the suggestion, and per-row Accept / "File under…".

- :class:`QueueFilter`: the default view is what needs review (current and suggested);
  waiting, failed, decided and superseded rows are one click away, and an explicit
  ``status__exact`` (the batch progress page's links) turns the default off.
- :class:`ReviewChangeList`: per page, one query per category model for the products' current
  categories and the row choosers, plus the viewer's permission, so columns add no query per row.
- :func:`search_by_title`: the product's title lives in the shop's table (a generic relation):
  one subquery per registered product model.
- :func:`decide_cell`: the row's buttons; they post the list form to
  :mod:`prodcat_django.admin.quick_review` (``formaction``), so they work without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from prodcat_django import services
from prodcat_django.admin.display import merchant_status
from prodcat_django.admin.product_list import admin_url
from prodcat_django.admin.quick_review import CATEGORY_FIELD
from prodcat_django.models import OPEN_STATUSES, CategorySuggestion, SuggestionStatus
from prodcat_django.registry import registered_adapters

#: Set on each listed suggestion by :class:`ReviewChangeList`.
ROW = "_prodcat_review_row"
#: Above this many categories a row offers a link to the suggestion instead of a chooser.
MAX_CHOOSER_CATEGORIES = 300


class QueueFilter(admin.SimpleListFilter):
    title = gettext_lazy("show")
    parameter_name = "needs"
    DEFAULT = "review"

    VIEWS = {
        "review": Q(is_current=True, status=SuggestionStatus.READY),
        "waiting": Q(is_current=True, status__in=OPEN_STATUSES),
        "failed": Q(is_current=True, status=SuggestionStatus.FAILED),
        "decided": Q(
            is_current=True, status__in=(SuggestionStatus.ACCEPTED, SuggestionStatus.REJECTED)
        ),
        "superseded": Q(is_current=False) | Q(status=SuggestionStatus.OBSOLETE),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("review", _("Needs review")),
            ("waiting", _("Waiting for the model")),
            ("failed", _("Could not suggest")),
            ("decided", _("Accepted or rejected")),
            ("superseded", _("Superseded")),
            ("all", _("Everything")),
        ]

    #: Query parameters that are not a filter (search, order, page, popups).
    NOT_FILTERS = frozenset({"q", "o", "p", "e", "all", "_popup", "_to_field"})

    def _effective(self, request: HttpRequest) -> str:
        if self.value():
            return str(self.value())
        # Another filter chosen (a batch, a status, as the progress page links): show exactly
        # what it selects; the default is for the plain list.
        if any(key not in self.NOT_FILTERS for key in request.GET):
            return "all"
        return self.DEFAULT

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        self._request_value = self._effective(request)
        condition = self.VIEWS.get(self._request_value)
        return queryset.filter(condition) if condition is not None else None

    def choices(self, changelist: ChangeList) -> Any:
        current = getattr(self, "_request_value", self.DEFAULT)
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: value}, ["status"]
                ),
                "display": label,
            }


def search_by_title(queryset: QuerySet, term: str) -> QuerySet:
    """Suggestions whose product's title contains ``term`` (any registered product model)."""
    condition = Q()
    for spec in registered_adapters():
        if not spec.title_field:
            continue  # its adapter names no searchable title field
        titles = spec.model._default_manager.filter(
            **{f"{spec.title_field}__icontains": term}
        ).annotate(_prodcat_pk=Cast("pk", output_field=CharField()))
        condition |= Q(content_type=spec.content_type, object_id__in=titles.values("_prodcat_pk"))
    return queryset.filter(condition) if condition else queryset.none()


class ReviewChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        annotate_rows(self.result_list, request)


def annotate_rows(suggestions: list[CategorySuggestion], request: HttpRequest) -> None:
    """The products' current categories, the row choosers and the viewer's permission."""
    from prodcat_django.admin.review import _adapter_for, _product

    can_review = services.can_review(request.user)
    by_adapter: dict[Any, list[tuple[CategorySuggestion, Any]]] = {}
    for suggestion in suggestions:
        adapter = _adapter_for(suggestion)
        product = _product(suggestion)
        by_adapter.setdefault(adapter, []).append(
            (suggestion, (adapter.current_category_key(product) if adapter and product else None))
        )
    for adapter, rows in by_adapter.items():
        choices: list[tuple[str, str]] = []
        names: dict[str, str] = {}
        category_model = adapter.category_model if adapter is not None else None
        if category_model is not None:
            manager = category_model._default_manager
            if can_review and manager.count() <= MAX_CHOOSER_CATEGORIES:
                objects = list(manager.all())
                labels = adapter.categories.labels_of(objects)  # full paths in a tree
                choices = sorted(((str(c.pk), labels[c.pk]) for c in objects), key=lambda kv: kv[1])
                names = dict(choices)
            else:
                wanted = [str(pk) for _, pk in rows if pk not in (None, "")]
                names = adapter.category_labels(wanted)
        elif adapter is not None:
            names = {str(pk): str(pk) for _, pk in rows if pk}
        for suggestion, current in rows:
            suggestion.__dict__[ROW] = {
                "can_review": can_review,
                "current": names.get(str(current), "") if current not in (None, "") else "",
                "choices": choices,
            }


def current_category_cell(suggestion: CategorySuggestion) -> SafeString:
    row = suggestion.__dict__.get(ROW) or {}
    name = row.get("current")
    if not name:
        return format_html('<span class="prodcat-decision">{}</span>', _("none yet"))
    return format_html("{}", name)


def decide_cell(suggestion: CategorySuggestion, admin_site: admin.AdminSite) -> SafeString:
    """Accept / File under… for a suggestion that needs review; who decided, otherwise."""
    row = suggestion.__dict__.get(ROW) or {}
    if suggestion.is_decided:
        who = suggestion.reviewed_by.get_username() if suggestion.reviewed_by_id else ""
        if suggestion.auto_accepted:
            text = _("Filed automatically")
        elif who:
            text = _("%(status)s by %(user)s") % {
                "status": merchant_status(suggestion.status),
                "user": who,
            }
        else:
            text = merchant_status(suggestion.status)
        return format_html('<span class="prodcat-decision">{}</span>', text)
    url = admin_url(admin_site, "prodcat_django_categorysuggestion_quick", suggestion.pk)
    reviewable = suggestion.is_current and suggestion.status in (
        SuggestionStatus.READY,
        SuggestionStatus.FAILED,
    )
    if not (row.get("can_review") and url and reviewable):
        return format_html('<span class="prodcat-decision">{}</span>', "—")
    parts = []
    # Out of taxonomy (issue 10): "File under…" comes first and open, Accept is not offered.
    flagged = suggestion.out_of_taxonomy and suggestion.status == SuggestionStatus.READY
    if suggestion.status == SuggestionStatus.READY and suggestion.category_pk and not flagged:
        parts.append(
            format_html(
                '<button type="submit" class="button default prodcat-quick" formaction="{}" '
                'formmethod="post" name="decision" value="accept" data-prodcat-quick '
                'aria-label="{}">{}</button>',
                url,
                _("Accept %(label)s") % {"label": suggestion.label},
                _("Accept"),
            )
        )
    choices = row.get("choices") or []
    if choices:
        field = CATEGORY_FIELD.format(pk=suggestion.pk)
        parts.append(
            format_html(
                '<details class="prodcat-file-under"{}><summary>{}</summary>'
                '<label class="prodcat-sr" for="id_{}">{}</label>'
                '<select name="{}" id="id_{}"><option value="">{}</option>{}</select> '
                '<button type="submit" class="button prodcat-quick" formaction="{}" '
                'formmethod="post" name="decision" value="file" data-prodcat-quick>{}</button>'
                "</details>",
                SafeString(" open") if flagged else "",
                _("File under…"),
                field,
                _("Category"),
                field,
                field,
                _("choose…"),
                format_html_join("", '<option value="{}">{}</option>', choices),
                url,
                _("File"),
            )
        )
    if not parts:
        return format_html('<span class="prodcat-decision">{}</span>', "—")
    return format_html(
        '<span class="prodcat-decide" data-prodcat-quick-slot>{}</span>',
        SafeString(" ".join(parts)),
    )


def next_to_review(after: CategorySuggestion) -> CategorySuggestion | None:
    """The suggestion to open after deciding ``after``: the next one needing review, by the
    list's default order (newest first), wrapping around to the newest."""
    queue = CategorySuggestion.objects.filter(QueueFilter.VIEWS["review"]).exclude(pk=after.pk)
    older = queue.filter(
        Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, pk__lt=after.pk)
    ).order_by("-created_at", "-pk")
    return older.first() or queue.order_by("-created_at", "-pk").first()


def waiting_count() -> int:
    """How many suggestions wait for a merchant (current and suggested)."""
    return CategorySuggestion.objects.filter(QueueFilter.VIEWS["review"]).count()
