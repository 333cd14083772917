"""What prodcat adds to the shop's own product admin.

- :class:`SuggestCategoriesAdminMixin`: put it before ``admin.ModelAdmin`` in the shop's
  product admin to get the "Suggest categories" action and a ``category_suggestion`` column.
- :func:`enable_suggestions`: the same for a product admin that is already registered, or a
  ``ModelAdmin`` class (a third-party admin, or one the shop does not want to subclass),
  without re-registering it.

The action works on the queryset Django hands it, so "Select all N" over a filtered
changelist queues exactly those products; :func:`prodcat_django.services.request_suggestions`
chunks them into Celery tasks. Nothing here imports torch.
"""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.views.main import ChangeList
from django.db import transaction
from django.db.models import Model, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from prodcat_django import services
from prodcat_django.admin import product_form
from prodcat_django.admin.product_list import (
    SuggestionScoreFilter,
    SuggestionStateFilter,
    admin_url,
    remember_row_context,
    suggestion_cell,
)
from prodcat_django.conf import prodcat_settings
from prodcat_django.models import CategorySuggestion

SUGGEST_ACTION = "suggest_categories"
#: The stylesheet of prodcat's admin fragments (status badges, score bars).
ADMIN_MEDIA = forms.Media(css={"all": ["prodcat_django/admin.css"]})
#: The product admin's scripts: the form's suggestion panel and the rows' Accept button.
PRODUCT_MEDIA = ADMIN_MEDIA + forms.Media(
    js=[
        "prodcat_django/product_form.js",
        "prodcat_django/quick_review.js",
        "prodcat_django/list_cards.js",
    ]
)
SUGGESTION_COLUMN = "category_suggestion"
#: The read-only field of the product form that holds the suggestion panel.
SUGGESTION_PANEL = "category_suggestion_panel"
#: The list filters the product list gets (state and score band of the current suggestion).
SUGGESTION_FILTERS = (SuggestionStateFilter, SuggestionScoreFilter)
#: Products named on the confirmation page (the count covers the rest).
CONFIRMATION_SAMPLE = 10


class SuggestionPrefetchingChangeList(ChangeList):
    """Loads the current suggestion of every product on the page in one query, so the
    ``category_suggestion`` column adds no query per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        services.prefetch_current_suggestions(self.result_list)
        remember_row_context(self.result_list, request)


class SuggestCategoriesAdminMixin:
    """Adds the "Suggest categories" action and the ``category_suggestion`` column to a
    ``ModelAdmin`` of a product model registered with ``prodcat_django.register``::

        @admin.register(Product)
        class ProductAdmin(SuggestCategoriesAdminMixin, admin.ModelAdmin):
            list_display = ["title", "category"]  # the column is appended
    """

    suggestion_confirmation_template = "admin/prodcat_django/suggest_confirmation.html"

    @property
    def media(self) -> forms.Media:
        return super().media + PRODUCT_MEDIA  # type: ignore[misc]

    # --- the column and the form's panel ---------------------------------------------------

    @admin.display(description=gettext_lazy("suggestion"))
    def category_suggestion(self, obj: Model) -> str:
        return suggestion_cell(obj, self.admin_site)

    @admin.display(description=gettext_lazy("suggested category"))
    def category_suggestion_panel(self, obj: Model) -> str:
        return product_form.panel(obj, self.admin_site)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # The form shows the suggestion panel (product_form.js moves it beside the category
        # field), unless the shop's ``fieldsets`` leave it out.
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if SUGGESTION_PANEL not in fields:
            fields.append(SUGGESTION_PANEL)
        return fields

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # A shop that lists its ``fields`` still gets the panel (not with ``fieldsets``).
        fields = list(super().get_fields(request, obj))  # type: ignore[misc]
        if SUGGESTION_PANEL not in fields:
            fields.append(SUGGESTION_PANEL)
        return fields

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))  # type: ignore[misc]
        return [*filters, *(f for f in SUGGESTION_FILTERS if f not in filters)]

    def get_urls(self) -> list[Any]:
        opts = self.model._meta  # type: ignore[attr-defined]
        return [
            path(
                "<path:object_id>/prodcat-suggestion/",
                self.admin_site.admin_view(  # type: ignore[attr-defined]
                    lambda request, object_id: product_form.panel_view(self, request, object_id)
                ),
                name=f"{opts.app_label}_{opts.model_name}_prodcat_suggestion",
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        # "Use …" then Save: accept the suggestion (recorded in the audit trail) first.
        if change:
            product_form.accept_used_suggestion(request, obj, form)
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def get_list_display(self, request: HttpRequest) -> Any:
        list_display = list(super().get_list_display(request))  # type: ignore[misc]
        if SUGGESTION_COLUMN not in list_display:
            list_display.append(SUGGESTION_COLUMN)
        return list_display

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        base = super().get_changelist(request, **kwargs)  # type: ignore[misc]
        return prefetching_changelist(base)

    # --- the action ------------------------------------------------------------------------

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        if (
            SUGGEST_ACTION not in actions
            and IS_POPUP_VAR not in request.GET
            and self.has_change_permission(request)  # type: ignore[attr-defined]
        ):
            action = self.get_action(SUGGEST_ACTION)  # type: ignore[attr-defined]
            if action is not None:
                actions[SUGGEST_ACTION] = action
        return actions

    @admin.action(description=gettext_lazy("Suggest categories"), permissions=["change"])
    def suggest_categories(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return suggest_categories_action(self, request, queryset)


def suggest_categories_action(
    model_admin: Any, request: HttpRequest, queryset: QuerySet
) -> HttpResponse | None:
    """Queue suggestions for ``queryset``; above ``BULK_CONFIRM_THRESHOLD`` products, first
    show a confirmation page that posts the same selection back with ``post=yes``.

    By default only products without a category and without a decision are queued: a
    category a merchant set, and an accepted or rejected suggestion, are not reopened by a
    "select all". When the selection holds such products, the confirmation page says how many
    and offers to include them (``redo_decided``).
    """
    total = queryset.count()
    confirmed = request.POST.get("post") == "yes"
    undecided = undecided_products(queryset)
    decided = total - undecided.count()
    if confirmed and request.POST.get("redo_decided") == "1":
        undecided, decided = queryset, 0
    count = total if confirmed and decided == 0 else total - decided
    threshold = int(prodcat_settings.BULK_CONFIRM_THRESHOLD)
    chunk_size = max(1, int(prodcat_settings.BULK_CHUNK_SIZE))
    if total == 0:
        model_admin.message_user(request, _("No products to queue."), messages.WARNING)
        return None
    if not confirmed and (count > threshold or decided):
        return TemplateResponse(
            request,
            model_admin.suggestion_confirmation_template,
            {
                **model_admin.admin_site.each_context(request),
                **selection_context(request, queryset),
                "title": _("Suggest categories"),
                "opts": model_admin.model._meta,
                "media": model_admin.media,
                "action_name": SUGGEST_ACTION,
                "submit_label": ngettext(
                    "Yes, queue %(count)d product", "Yes, queue %(count)d products", count
                )
                % {"count": count},
                "count": count,
                "decided": decided,
                "objects_name": model_admin.model._meta.verbose_name_plural,
                "chunk_size": chunk_size,
                "task_count": math.ceil(max(count, 1) / chunk_size),
                "sample": list(undecided[:CONFIRMATION_SAMPLE]),
            },
        )
    if decided:
        model_admin.message_user(
            request,
            ngettext(
                "Left out %(n)d product that already has a category or a decision.",
                "Left out %(n)d products that already have a category or a decision.",
                decided,
            )
            % {"n": decided},
            messages.INFO,
        )
    queryset = undecided
    if count == 0:
        model_admin.message_user(request, _("No products to queue."), messages.WARNING)
        return None
    batch = services.request_suggestions(
        queryset,
        user=request.user,
        chunk_size=chunk_size,
        label=_("Admin: %(count)d %(objects)s")
        % {"count": count, "objects": model_admin.model._meta.verbose_name_plural},
    )
    tasks = math.ceil(batch.total / chunk_size)
    text = _("Queued %(products)s in %(tasks)s.") % {
        "products": ngettext("%(n)d product", "%(n)d products", batch.total) % {"n": batch.total},
        "tasks": ngettext("%(n)d task", "%(n)d tasks", tasks) % {"n": tasks},
    }
    unsent = _unsent_count(batch, queryset.db)
    if unsent:
        model_admin.message_user(
            request,
            ngettext(
                "%(n)d suggestion could not be sent to the task broker; it stays pending and "
                "is sent by the periodic dispatch_pending sweep (or `manage.py "
                "prodcat_dispatch_pending`).",
                "%(n)d suggestions could not be sent to the task broker; they stay pending and "
                "are sent by the periodic dispatch_pending sweep (or `manage.py "
                "prodcat_dispatch_pending`).",
                unsent,
            )
            % {"n": unsent},
            messages.WARNING,
        )
    progress_url = batch_progress_url(model_admin.admin_site, batch.pk)
    if progress_url:
        model_admin.message_user(
            request,
            format_html('{} <a href="{}">{}</a>', text, progress_url, _("Watch progress")),
            messages.SUCCESS,
        )
    else:
        model_admin.message_user(request, text, messages.SUCCESS)
    return None


def undecided_products(queryset: QuerySet) -> QuerySet:
    """The products of ``queryset`` without a category and without an accepted or rejected
    current suggestion (the ones a bulk "Suggest categories" queues by default)."""
    from prodcat_django.models import DECIDED_STATUSES
    from prodcat_django.registry import get_adapter

    adapter = get_adapter(queryset.model)
    decided = (
        CategorySuggestion.objects.filter(
            content_type=adapter.content_type, is_current=True, status__in=DECIDED_STATUSES
        )
        .annotate(product_pk=Cast("object_id", output_field=_pk_type(queryset.model)))
        .values("product_pk")
    )
    return adapter.uncategorized(queryset).exclude(pk__in=decided)


def _pk_type(model: type[Model]) -> Any:
    """A plain field of the type of ``model``'s primary key, to cast ``object_id`` text to."""
    from django.db import models

    field = model._meta.pk
    while field.is_relation:  # multi-table inheritance: the parent's key
        field = field.target_field
    for auto, plain in (
        (models.BigAutoField, models.BigIntegerField),
        (models.SmallAutoField, models.SmallIntegerField),
        (models.AutoField, models.IntegerField),
    ):
        if isinstance(field, auto):
            return plain()
    return type(field)()


def _unsent_count(batch: Any, using: str) -> int:
    """Suggestions of the batch the broker refused. Only known once the chunks' transactions
    committed: inside an outer transaction (ATOMIC_REQUESTS) dispatch has not run yet."""
    if transaction.get_connection(using).in_atomic_block:
        return 0
    return CategorySuggestion.objects.filter(batch=batch, dispatched_at__isnull=True).count()


def selection_context(request: HttpRequest, queryset: QuerySet) -> dict[str, Any]:
    """Hidden-field data to post an action's selection back from an intermediate page.

    With "select all" only a placeholder id travels (Django requires one): the action then
    rebuilds the queryset from the changelist's filters in the URL, as on the first post.
    """
    select_across = request.POST.get("select_across") in {"1", "True", "true"}
    selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    return {
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "select_across": select_across,
        "selected_pks": [] if select_across else [obj.pk for obj in queryset],
        "placeholder_pk": selected[0] if selected else "",
    }


def prefetching_changelist(base: type[ChangeList]) -> type[ChangeList]:
    if issubclass(base, SuggestionPrefetchingChangeList):
        return base
    return type(f"Prefetching{base.__name__}", (SuggestionPrefetchingChangeList, base), {})


def batch_progress_url(admin_site: admin.AdminSite | None, batch_pk: int) -> str | None:
    """The batch progress page on ``admin_site`` (or the default site), if registered there."""
    return admin_url(admin_site, "prodcat_django_suggestionbatch_progress", batch_pk)


def enable_suggestions(target: admin.AdminSite | type[admin.ModelAdmin], model: type[Model]) -> Any:
    """Give an existing product admin everything :class:`SuggestCategoriesAdminMixin` gives,
    without re-registering it: the "Suggest categories" action, the ``category_suggestion``
    column with its per-row Accept, the state and score filters, and the form's suggestion
    panel (with its poll URL, and "Use" then Save accepting).

    ``target`` is the admin site the product is registered on (its registered ``ModelAdmin``
    is changed) or a ``ModelAdmin`` class (changed in place, for every site using it). Call it
    before the URLconf is loaded (the panel's poll URL is one of the admin's URLs), e.g. from
    your ``admin.py`` or ``AppConfig.ready()``. Idempotent; returns the ``ModelAdmin``
    instance or class it changed.
    """
    from prodcat_django.registry import get_adapter

    get_adapter(model)  # fail early, with a clear message, for an unregistered product model
    if isinstance(target, admin.AdminSite):
        if not target.is_registered(model):
            raise admin.exceptions.NotRegistered(
                f"{model._meta.label} is not registered on the admin site {target.name!r}; "
                "register its ModelAdmin first, or use SuggestCategoriesAdminMixin"
            )
        model_admin = target.get_model_admin(model)
        _add_to(model_admin)
        return model_admin
    if isinstance(target, type) and issubclass(target, admin.ModelAdmin):
        _add_to(target)
        return target
    raise TypeError(
        f"enable_suggestions() takes an AdminSite or a ModelAdmin class, not {target!r}"
    )


def _add_to(model_admin: admin.ModelAdmin | type[admin.ModelAdmin]) -> None:
    """Give an instance or a class the mixin, exactly as if the shop had written
    ``class X(SuggestCategoriesAdminMixin, Base)``: the action, the column and its filters,
    the per-row Accept, the form's panel and its poll URL, and "Use" then Save accepting.

    An instance gets a subclass of its class; a class gets the mixin inserted first among its
    bases (its own methods still come first, and reach the mixin's through ``super()``)."""
    cls = model_admin if isinstance(model_admin, type) else type(model_admin)
    if issubclass(cls, SuggestCategoriesAdminMixin):
        return  # already has everything through the mixin
    if not isinstance(model_admin, type):
        model_admin.__class__ = type(
            f"{cls.__name__}WithSuggestions",
            (SuggestCategoriesAdminMixin, cls),
            {"__module__": cls.__module__},
        )
        return
    if cls in (admin.ModelAdmin, admin.options.BaseModelAdmin):
        raise TypeError(
            "enable_suggestions() would change every ModelAdmin: pass the product's own "
            "ModelAdmin class (or use SuggestCategoriesAdminMixin)"
        )
    cls.__bases__ = (SuggestCategoriesAdminMixin, *cls.__bases__)
