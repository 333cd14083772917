"""Merchant review: accept, reject (with or without a correction), and the append-only audit
trail of decisions. Also the rule the worker obeys: a category a human chose is never replaced.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone

from prodcat_django.adapters import ProductAdapter
from prodcat_django.models import (
    DECIDED_STATUSES,
    CategorySuggestion,
    DecisionAction,
    NeighbourSource,
    SuggestionDecision,
    SuggestionStatus,
)
from prodcat_django.registry import get_adapter
from prodcat_django.services import neighbours

#: The permission that allows accepting and rejecting suggestions.
REVIEW_PERMISSION = "prodcat_django.review_categorysuggestion"


def accept(
    suggestion: CategorySuggestion,
    *,
    user: Any,
    category: models.Model | Any | None = None,
    override: bool = False,
    confirm_category_change: bool = False,
) -> CategorySuggestion:
    """Accept ``suggestion``: set the product's category and record the decision.

    ``category`` (an instance, a primary key, a path such as ``"Footwear > Heels"`` or a name;
    a name for a product that stores names) defaults to the category the suggestion's top
    label matched, resolved by the product's adapter. Idempotent and conditional:

    - accepting an accepted suggestion with the same category again changes nothing and
      records nothing;
    - a suggestion decided otherwise (rejected, or accepted with another category) raises
      ``ValidationError`` code ``already_decided`` unless ``override``;
    - when the product's category changed since the suggestion was made (a merchant filed it
      by hand meanwhile), ``ValidationError`` code ``category_changed`` unless
      ``confirm_category_change``.

    Raises ``PermissionDenied`` without both the review permission and ``change`` permission
    on the product's model, and ``ValidationError`` (``not_current``, ``not_ready``,
    ``no_category``, ``bad_category``) otherwise. Returns the suggestion; the instance passed
    in is updated too.
    """
    _check_permission(user, suggestion, sets_category=True)
    with transaction.atomic():
        given = suggestion
        # Locked: concurrent decisions on one suggestion run one after the other, and each
        # sees the one before it.
        suggestion, product, adapter = _lock_for_review(suggestion)
        if category is None:
            if not suggestion.category_pk:
                raise ValidationError(
                    f"No shop category matches the label {suggestion.label!r}; choose a "
                    "category (reject with a correction).",
                    code="no_category",
                )
            category = suggestion.category_pk
        category = adapter.resolve_category(category)
        key = adapter.category_key(category)
        if _same_decision(suggestion, SuggestionStatus.ACCEPTED, key):
            _copy_state(suggestion, given)
            return suggestion  # the same decision again: nothing to change or record
        if _human_decided(suggestion) and not override:
            raise _already_decided(suggestion, adapter)
        previous = category_keys_text(adapter.get_categories(product))
        if not suggestion.is_decided and not confirm_category_change:
            _check_category_unchanged(
                suggestion, adapter, adapter.current_category_key(product), key
            )
        with neighbours.deciding():  # the decision files the product in the index itself
            adapter.apply_category(product, category)
        suggestion.status = SuggestionStatus.ACCEPTED
        suggestion.auto_accepted = False
        suggestion.reviewed_by = user
        suggestion.reviewed_at = timezone.now()
        suggestion.correction_pk = "" if key == suggestion.category_pk else key
        suggestion.save()
        record_decision(suggestion, DecisionAction.ACCEPTED, user, key, previous)
        # Learnt at once, after the commit: the next product like this one finds it.
        neighbours.decision_made(
            suggestion,
            NeighbourSource.MERCHANT if suggestion.correction_pk else NeighbourSource.ACCEPTED,
        )
    _copy_state(suggestion, given)
    return suggestion


def reject(
    suggestion: CategorySuggestion,
    *,
    user: Any,
    category: models.Model | Any | None = None,
    note: str = "",
    override: bool = False,
) -> CategorySuggestion:
    """Reject ``suggestion``, optionally correcting the product to ``category``.

    Without ``category`` the product is left as it is; with one (instance or pk) the product's
    category is set to it and stored as the correction, which needs ``change`` permission on
    the product's model besides the review permission. Rejecting a rejected suggestion with
    the same correction (or none) again is a no-op; an accepted one, or a rejected one with
    another correction, raises ``ValidationError`` code ``already_decided`` unless
    ``override``. Other errors as :func:`accept`; a failed suggestion may be rejected too
    (typically with a correction).
    """
    _check_permission(user, suggestion, sets_category=category is not None)
    with transaction.atomic():
        given = suggestion
        suggestion, product, adapter = _lock_for_review(suggestion, allow_failed=True)
        resolved = adapter.resolve_category(category) if category is not None else None
        key = None if resolved is None else adapter.category_key(resolved)
        if _same_decision(suggestion, SuggestionStatus.REJECTED, key):
            _copy_state(suggestion, given)
            return suggestion
        if _human_decided(suggestion) and not override:
            raise _already_decided(suggestion, adapter)
        previous = category_keys_text(adapter.get_categories(product))
        if resolved is not None:
            with neighbours.deciding():
                adapter.apply_category(product, resolved)
        suggestion.status = SuggestionStatus.REJECTED
        suggestion.auto_accepted = False
        suggestion.reviewed_by = user
        suggestion.reviewed_at = timezone.now()
        suggestion.correction_pk = key or ""
        suggestion.note = note
        suggestion.save()
        record_decision(
            suggestion,
            DecisionAction.REJECTED,
            user,
            key or "",
            previous,
            note=note,
        )
        if resolved is not None:  # a correction: the merchant filed it
            neighbours.decision_made(suggestion, NeighbourSource.MERCHANT)
    _copy_state(suggestion, given)
    return suggestion


def decided_category_pk(suggestion: CategorySuggestion) -> str:
    """The category a decided suggestion filed the product under ("" for a plain rejection)."""
    if suggestion.status == SuggestionStatus.ACCEPTED:
        return suggestion.correction_pk or suggestion.category_pk
    return suggestion.correction_pk


def _human_decided(suggestion: CategorySuggestion) -> bool:
    # An auto-accept is the model's decision: a reviewer may confirm or reverse it freely.
    return suggestion.is_decided and not suggestion.auto_accepted


def _same_decision(suggestion: CategorySuggestion, status: str, category_pk: Any) -> bool:
    # An auto-accept confirmed by a person is a new (human) decision, not the same one.
    return (
        suggestion.status == status
        and not suggestion.auto_accepted
        and decided_category_pk(suggestion) == ("" if category_pk is None else str(category_pk))
    )


def _already_decided(suggestion: CategorySuggestion, adapter: ProductAdapter) -> ValidationError:
    who = suggestion.reviewed_by.get_username() if suggestion.reviewed_by else None
    decided = _category_name(adapter, decided_category_pk(suggestion))
    what = (
        f"accepted (filed under {decided})"
        if suggestion.status == SuggestionStatus.ACCEPTED
        else f"rejected{f' (filed under {decided})' if decided else ''}"
    )
    return ValidationError(
        f"This suggestion was already {what}{f' by {who}' if who else ''}; "
        "a different decision needs override.",
        code="already_decided",
    )


def _check_category_unchanged(
    suggestion: CategorySuggestion, adapter: ProductAdapter, current: Any, target: str
) -> None:
    seen = suggestion.product_category_pk
    now = "" if current in (None, "") else str(current)
    if seen is None or now in (seen, target):
        return  # not recorded (an older row), unchanged, or already where the accept files it
    raise ValidationError(
        f"The product's category changed since this suggestion was made (from "
        f"{_category_name(adapter, seen) or 'none'} to {_category_name(adapter, now) or 'none'}); "
        "confirm to replace it.",
        code="category_changed",
    )


def _category_name(adapter: ProductAdapter, pk: str) -> str:
    if not pk:
        return ""
    return adapter.category_labels([pk]).get(pk, f"#{pk}")


def _copy_state(source: CategorySuggestion, target: CategorySuggestion) -> None:
    # The caller's instance shows the decision too (the service worked on a locked copy).
    if target is not source:
        target.__dict__.update(
            {f.attname: getattr(source, f.attname) for f in source._meta.concrete_fields}
        )
        target._state.fields_cache.clear()


def can_review(user: Any) -> bool:
    """Whether ``user`` may accept and reject suggestions at all (the review permission)."""
    return bool(user is not None and user.is_active and user.has_perm(REVIEW_PERMISSION))


def change_permission(model: type[models.Model]) -> str:
    """``<app_label>.change_<model>``: the permission that lets a user set a product's category."""
    opts = model._meta
    return f"{opts.app_label}.{get_permission_codename('change', opts)}"


def can_set_category(user: Any, suggestion: CategorySuggestion) -> bool:
    """The review permission and ``change`` permission on the suggestion's product model: what
    accepting, or rejecting with a correction, needs (both write the product)."""
    model = suggestion.content_type.model_class()
    return can_review(user) and model is not None and user.has_perm(change_permission(model))


def _check_permission(user: Any, suggestion: CategorySuggestion, *, sets_category: bool) -> None:
    if not can_review(user):
        raise PermissionDenied("You do not have permission to review category suggestions.")
    if sets_category and not can_set_category(user, suggestion):
        model = suggestion.content_type.model_class()
        perm = change_permission(model) if model is not None else "change"
        raise PermissionDenied(
            f"Setting a product's category needs the {perm!r} permission as well as the "
            "review permission."
        )


def _lock_for_review(
    suggestion: CategorySuggestion, *, allow_failed: bool = False
) -> tuple[CategorySuggestion, models.Model, ProductAdapter]:
    suggestion = CategorySuggestion.objects.select_for_update().get(pk=suggestion.pk)
    allowed = {SuggestionStatus.READY, *DECIDED_STATUSES}
    if allow_failed:
        allowed.add(SuggestionStatus.FAILED)
    if not suggestion.is_current:
        raise ValidationError(
            "This suggestion was superseded by a newer one; review the product's current "
            "suggestion.",
            code="not_current",
        )
    if suggestion.status not in allowed:
        raise ValidationError(
            f"A {suggestion.get_status_display()} suggestion cannot be reviewed yet.",
            code="not_ready",
        )
    model = suggestion.content_type.model_class()
    try:
        adapter = get_adapter(model)
        product = adapter.model._default_manager.select_for_update().get(pk=suggestion.object_id)
    except (LookupError, models.ObjectDoesNotExist):
        raise ValidationError("The product of this suggestion no longer exists.") from None
    return suggestion, product, adapter


def category_keys_text(keys: list[str]) -> str:
    """The audit trail's record of a product's categories: one key, or several joined by
    commas (a many-to-many)."""
    return ",".join(k for k in keys if k)[:64]


def record_decision(
    suggestion: CategorySuggestion,
    action: str,
    user: Any,
    category_pk: Any,
    previous_pk: Any,
    *,
    note: str = "",
) -> SuggestionDecision:
    return SuggestionDecision.objects.create(
        suggestion=suggestion,
        content_type_id=suggestion.content_type_id,
        object_id=suggestion.object_id,
        action=action,
        user=user if getattr(user, "is_authenticated", False) else None,
        username=user.get_username() if getattr(user, "is_authenticated", False) else "",
        from_label=suggestion.label,
        from_score=suggestion.score,
        category_pk="" if category_pk in (None, "") else str(category_pk),
        previous_category_pk="" if previous_pk in (None, "") else str(previous_pk),
        model_version=suggestion.model_version,
        note=note,
    )


def human_decided_category(product: models.Model, adapter: ProductAdapter | None = None) -> bool:
    """Whether the product's current category was chosen by a human (the adapter's
    ``is_human_decided``; by default the audit trail decides, see
    :meth:`~prodcat_django.adapters.ProductAdapter.is_human_decided`)."""
    return (adapter or get_adapter(product)).is_human_decided(product)
