"""The API's views. Each one checks input, calls :mod:`prodcat_django.services`, and renders.

Every view names its authentication, permission and throttle classes (the project's DRF
defaults never apply to them) and its drf-spectacular ``AutoSchema``, so the schema is right
whatever ``DEFAULT_SCHEMA_CLASS`` the shop uses.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.shortcuts import get_object_or_404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from prodcat_django import services
from prodcat_django.api.authentication import api_authentication_classes
from prodcat_django.api.categories import resolve_category
from prodcat_django.api.errors import Conflict, ModelUnavailable
from prodcat_django.api.permissions import (
    CanChangeProduct,
    CanReviewSuggestions,
    CanViewProduct,
    CanViewSuggestions,
    check_product_view_permission,
)
from prodcat_django.api.serializers import (
    AcceptRequestSerializer,
    RejectRequestSerializer,
    SuggestionSerializer,
    SuggestRequestSerializer,
    SuggestResponseSerializer,
    check_upload_size,
)
from prodcat_django.api.throttling import THROTTLE_SCOPE, ProdcatRateThrottle
from prodcat_django.ml.manifest import CheckpointError
from prodcat_django.models import CategorySuggestion
from prodcat_django.registry import NotRegistered, get_adapter_by_label, registered_adapters
from prodcat_django.training.store import StoreError

logger = logging.getLogger(__name__)

# Room for the multipart boundaries, headers and the title on top of the image itself.
MULTIPART_OVERHEAD = 64 * 1024

_COMMON_ERRORS = {
    401: OpenApiResponse(description="No or wrong credentials."),
    403: OpenApiResponse(description="Authenticated, but without the permission this needs."),
    429: OpenApiResponse(description="Too many requests (PRODCAT API_THROTTLE_RATE)."),
}
_SUGGESTION_ERRORS = {
    **_COMMON_ERRORS,
    404: OpenApiResponse(description="No such suggestion."),
    409: OpenApiResponse(
        description="The suggestion cannot be reviewed in its state: not ready yet, superseded "
        "by a newer one, its product deleted, (accept) no category matched its label, "
        "already decided otherwise (code already_decided; send override), or (accept) the "
        "product's category changed since the suggestion was made (code category_changed; "
        "send confirm_category_change). The body carries detail and code."
    ),
}


def document(**kwargs: Any) -> Any:
    """``extend_schema`` based on drf-spectacular's ``AutoSchema`` even where the shop's
    ``DEFAULT_SCHEMA_CLASS`` is another one (extend_schema would subclass that)."""

    def decorator(method: Any) -> Any:
        method.kwargs = {"schema": AutoSchema}
        return extend_schema(tags=["prodcat"], **kwargs)(method)

    return decorator


class ProdcatAPIView(APIView):
    """Base of prodcat's views: explicit authentication, throttle and schema."""

    throttle_classes = [ProdcatRateThrottle]
    throttle_scope = THROTTLE_SCOPE
    schema = AutoSchema()

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [cls() for cls in api_authentication_classes()]


def _django_errors(exc: DjangoValidationError) -> Any:
    """A Django ``ValidationError`` as DRF error data (field dict, or a list of messages)."""
    return exc.message_dict if hasattr(exc, "error_dict") else exc.messages


class SuggestView(ProdcatAPIView, GenericAPIView):
    """``POST suggest/``: classify a title and/or photo now, in this process; nothing is
    stored. With ``explain=true`` the answer also says what the model attended to.

    Needs ``prodcat_django.view_categorysuggestion``. The model loads on the first request
    of each web process (seconds); later requests take tens of milliseconds. A generic view
    with a serializer, so the browsable API shows a form with a file field.
    """

    permission_classes = [CanViewSuggestions]
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = SuggestRequestSerializer

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Refuse an oversized body from its Content-Length before anything reads it: even
        # authentication may (the session's CSRF check parses the form), as a web server's
        # body-size limit would. Bodies without a length are checked once parsed.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MULTIPART_OVERHEAD:
            check_upload_size(length - MULTIPART_OVERHEAD, what="The request (less form overhead)")
        super().initial(request, *args, **kwargs)

    @document(
        operation_id="prodcat_suggest",
        summary="Suggest categories for a title and/or photo",
        request={"multipart/form-data": SuggestRequestSerializer},
        responses={
            200: SuggestResponseSerializer,
            400: OpenApiResponse(
                description="No title and no image, top_k out of range, or an image that "
                "cannot be decoded or has more than MAX_IMAGE_PIXELS pixels; the body maps "
                "each field to its errors."
            ),
            413: OpenApiResponse(description="The upload is above MAX_UPLOAD_BYTES."),
            503: OpenApiResponse(description="The model cannot be loaded (see the server log)."),
            **_COMMON_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        form = SuggestRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data.get("image")
        image_bytes = upload.read() if upload is not None else None
        explanation = None
        try:
            if form.validated_data.get("explain"):
                explanation = services.suggest_explained(
                    form.validated_data.get("title", ""),
                    image_bytes,
                    top_k=form.validated_data.get("top_k"),
                )
                prediction = explanation.prediction
            else:
                prediction = services.suggest(
                    form.validated_data.get("title", ""),
                    image_bytes,
                    top_k=form.validated_data.get("top_k"),
                )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_django_errors(exc)) from None
        except (CheckpointError, StoreError, ModuleNotFoundError) as exc:
            logger.exception("prodcat: the suggest endpoint cannot load the model: %s", exc)
            raise ModelUnavailable() from None
        from prodcat_django.training.store import active_predictor

        info = active_predictor().predictor.info  # cached: the predictor that just answered
        data = {
            "labels": [{"label": ls.label, "score": ls.score} for ls in prediction.labels],
            "model": {"name": info.name, "version": info.version},
            "auto_accept": prediction.auto_accept,
            "threshold": info.threshold,
            # The model's own verdict (the neighbour head runs in the worker, not here).
            "out_of_taxonomy": bool(prediction.out_of_taxonomy),
            "ood_score": _float_or_none(prediction.ood_score),
            "ood_threshold": _float_or_none(prediction.ood_threshold),
            "ood_reason": prediction.ood_reason if prediction.out_of_taxonomy else "",
        }
        if explanation is not None:
            data["explanation"] = {
                "tokens": [[word, float(weight)] for word, weight in explanation.tokens],
                "regions": [[float(v) for v in row] for row in explanation.regions],
                "modality_weight": {k: float(v) for k, v in explanation.modality_weight.items()},
            }
        return Response(SuggestResponseSerializer(data).data)


PRODUCT_ID_PARAMETER = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The product's primary key."
)
MODEL_PARAMETER = OpenApiParameter(
    "model",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    description="The product model as <app_label>.<ModelName>; required only when several "
    "models are registered with prodcat.",
)


class SuggestionPagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


class ProductSuggestionsView(ProdcatAPIView, GenericAPIView):
    """``products/<pk>/suggestions/[?model=<app_label>.<ModelName>]``: a product's suggestions.

    ``POST`` queues a new one; it needs ``change`` permission on the product model and always
    queues (``force``), even when the product's title and image did not change. It returns 202
    with the pending suggestion and its URL (also in ``Location``); poll that URL until
    ``status`` is ``ready`` or ``failed``.

    ``GET`` lists the product's suggestions, the current one first, then older ones newest
    first (paginated: ``?limit=&offset=``); it needs ``view_categorysuggestion`` and ``view``
    or ``change`` permission on the product model. This is how a client finds the suggestion
    that saving the product queued.
    """

    permission_classes = [CanChangeProduct]  # POST
    read_permission_classes = [CanViewSuggestions, CanViewProduct]  # GET
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    serializer_class = SuggestionSerializer
    pagination_class = SuggestionPagination

    def get_permissions(self) -> list[Any]:
        if self.request.method in SAFE_METHODS:
            return [permission() for permission in self.read_permission_classes]
        return super().get_permissions()

    def get_product(self, pk: str) -> models.Model:
        model = self.get_product_model()
        try:
            return model._default_manager.get(pk=pk)
        except (model.DoesNotExist, ValueError, TypeError, DjangoValidationError):
            raise NotFound(f"No {model._meta.verbose_name} with id {pk!r}.") from None

    def get_product_model(self) -> type[models.Model]:
        """The registered model named by ``?model=``, or the only registered one."""
        if hasattr(self, "_product_model"):
            return self._product_model
        label = self.request.query_params.get("model", "").strip()
        adapters = registered_adapters()
        if label:
            try:
                model = get_adapter_by_label(label).model
            except NotRegistered:
                raise serializers.ValidationError(
                    {"model": [f"{label!r} is not a product model registered with prodcat."]}
                ) from None
        elif len(adapters) == 1:
            model = adapters[0].model
        elif not adapters:
            raise NotFound("No product model is registered with prodcat.")
        else:
            choices = ", ".join(adapter.label for adapter in adapters)
            raise serializers.ValidationError(
                {
                    "model": [
                        f"Several product models are registered; pass ?model= (one of: {choices})."
                    ]
                }
            )
        self._product_model = model
        return model

    @document(
        operation_id="prodcat_request_suggestion",
        summary="Queue a category suggestion for a product",
        parameters=[PRODUCT_ID_PARAMETER, MODEL_PARAMETER],
        request=None,
        responses={
            202: SuggestionSerializer,
            400: OpenApiResponse(description="?model= missing (several models) or unknown."),
            404: OpenApiResponse(description="No such product."),
            **_COMMON_ERRORS,
        },
    )
    def post(self, request: Request, pk: str) -> Response:
        product = self.get_product(pk)
        suggestion = services.request_suggestion(product, force=True)
        if suggestion is None:
            # A concurrent request queued one first: that one is the fresh suggestion.
            suggestion = _suggestions().current_for(product).first()
        if suggestion is None:
            raise Conflict("The suggestion could not be queued; try again.")
        data = SuggestionSerializer(suggestion, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})

    @document(
        operation_id="prodcat_list_product_suggestions",
        summary="A product's suggestions, the current one first",
        parameters=[PRODUCT_ID_PARAMETER, MODEL_PARAMETER],
        responses={
            200: SuggestionSerializer(many=True),
            400: OpenApiResponse(description="?model= missing (several models) or unknown."),
            404: OpenApiResponse(description="No such product."),
            **_COMMON_ERRORS,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        product = self.get_product(pk)
        suggestions = (
            _suggestions().for_product(product).order_by("-is_current", "-created_at", "-pk")
        )
        page = self.paginate_queryset(suggestions)
        data = SuggestionSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)


def _suggestions() -> models.QuerySet:
    return CategorySuggestion.objects.select_related("content_type", "reviewed_by")


class SuggestionObjectMixin:
    def get_suggestion(self, pk: int) -> CategorySuggestion:
        return get_object_or_404(_suggestions(), pk=pk)


class SuggestionDetailView(SuggestionObjectMixin, ProdcatAPIView):
    """``GET suggestions/<id>/``; needs ``prodcat_django.view_categorysuggestion`` and ``view``
    or ``change`` permission on the suggestion's product model, as the product's list does."""

    permission_classes = [CanViewSuggestions]

    def get_suggestion(self, pk: int) -> CategorySuggestion:
        suggestion = super().get_suggestion(pk)
        check_product_view_permission(self.request.user, suggestion.content_type.model_class())
        return suggestion

    @document(
        operation_id="prodcat_get_suggestion",
        summary="A category suggestion",
        responses={
            200: SuggestionSerializer,
            404: OpenApiResponse(description="No such id."),
            **_COMMON_ERRORS,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        suggestion = self.get_suggestion(pk)
        return Response(SuggestionSerializer(suggestion, context={"request": request}).data)


def _review(request: Request, call: Any) -> Response:
    """Run a services review call, mapping its Django errors onto HTTP ones."""
    try:
        suggestion = call()
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    except DjangoValidationError as exc:
        if getattr(exc, "code", None) == "bad_category":
            raise serializers.ValidationError({"category": exc.messages}) from None
        raise Conflict({"detail": " ".join(exc.messages), "code": exc.code or "conflict"}) from None
    suggestion = _suggestions().get(pk=suggestion.pk)  # as stored, with who reviewed it
    return Response(SuggestionSerializer(suggestion, context={"request": request}).data)


class AcceptSuggestionView(SuggestionObjectMixin, ProdcatAPIView):
    """``POST suggestions/<id>/accept/``: file the product under the suggested category.

    Needs ``prodcat_django.review_categorysuggestion`` and ``change`` permission on the
    product's model. Accepting an accepted suggestion again is a no-op (200, no second audit
    row); a different decision already taken, or a product whose category changed since the
    suggestion was made, answers 409 unless the body says ``override`` /
    ``confirm_category_change``.
    """

    permission_classes = [CanReviewSuggestions]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @document(
        operation_id="prodcat_accept_suggestion",
        summary="Accept a suggestion: set the product's category",
        request=AcceptRequestSerializer,
        responses={
            200: SuggestionSerializer,
            400: OpenApiResponse(description="A flag is not a boolean."),
            **_SUGGESTION_ERRORS,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        suggestion = self.get_suggestion(pk)
        form = AcceptRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        flags = form.validated_data
        return _review(
            request,
            lambda: services.accept(
                suggestion,
                user=request.user,
                override=flags["override"],
                confirm_category_change=flags["confirm_category_change"],
            ),
        )


class RetrySuggestionView(SuggestionObjectMixin, ProdcatAPIView):
    """``POST suggestions/<id>/retry/``: queue a fresh suggestion for a failed one's product.

    Needs ``change`` permission on the product's model (as ``POST products/<pk>/suggestions/``
    does). Answers 202 with the new pending suggestion (its URL also in ``Location``); 409 when
    the suggestion did not fail, was superseded, or its product was deleted.
    """

    permission_classes = [IsAuthenticated]

    @document(
        operation_id="prodcat_retry_suggestion",
        summary="Retry a failed suggestion",
        request=None,
        responses={
            202: SuggestionSerializer,
            **_COMMON_ERRORS,
            404: OpenApiResponse(description="No such suggestion."),
            409: OpenApiResponse(
                description="Not failed (code not_failed), superseded (not_current), or its "
                "product was deleted (no_product)."
            ),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        suggestion = self.get_suggestion(pk)
        try:
            fresh = services.retry(suggestion, user=request.user)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        except DjangoValidationError as exc:
            raise Conflict(
                {"detail": " ".join(exc.messages), "code": exc.code or "conflict"}
            ) from None
        data = SuggestionSerializer(fresh, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


class RejectSuggestionView(SuggestionObjectMixin, ProdcatAPIView):
    """``POST suggestions/<id>/reject/`` with optional ``category`` (correction), ``note`` and
    ``override``.

    Needs ``prodcat_django.review_categorysuggestion``, and with a correction ``change``
    permission on the product's model too. The same rejection again is a no-op; rejecting a
    suggestion decided otherwise answers 409 unless ``override``.
    """

    permission_classes = [CanReviewSuggestions]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @document(
        operation_id="prodcat_reject_suggestion",
        summary="Reject a suggestion, optionally filing the product under another category",
        request=RejectRequestSerializer,
        responses={
            200: SuggestionSerializer,
            400: OpenApiResponse(description="The category does not exist."),
            **_SUGGESTION_ERRORS,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        suggestion = self.get_suggestion(pk)
        form = RejectRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        value = form.validated_data.get("category", "").strip()
        category = resolve_category(suggestion, value) if value else None
        note = form.validated_data.get("note", "")
        override = form.validated_data["override"]
        return _review(
            request,
            lambda: services.reject(
                suggestion, user=request.user, category=category, note=note, override=override
            ),
        )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
