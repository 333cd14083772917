"""Request and response shapes of the API; drf-spectacular documents them as they are.

Validation of *what the model gets* (empty input, ``top_k`` range, image size, decoding,
pixel limit) lives in :func:`prodcat_django.services.suggest`; these serializers only check
types and the transport-level upload limit, so the rules have one home.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import models
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from prodcat_django.api.errors import UploadTooLarge
from prodcat_django.conf import prodcat_settings
from prodcat_django.models import CategorySuggestion, SuggestionStatus
from prodcat_django.registry import get_adapter
from prodcat_django.services.errors import without_paths


def check_upload_size(size: int | None, *, what: str = "The image") -> None:
    """413 when ``size`` bytes exceed ``PRODCAT["MAX_UPLOAD_BYTES"]``."""
    limit = int(prodcat_settings.MAX_UPLOAD_BYTES)
    if size is not None and size > limit:
        raise UploadTooLarge(
            {"image": [f"{what} is {size:,} bytes; the limit is {limit:,} bytes."]}
        )


# --------------------------------------------------------------------------- suggest


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A file upload, documented as binary (spectacular's FileField default is a URI)."""


class SuggestRequestSerializer(serializers.Serializer):
    """``POST suggest/``: multipart ``title`` and/or ``image``, optional ``top_k``."""

    title = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="The product title. Send a title, an image, or both.",
    )
    image = UploadField(
        required=False,
        help_text="A product photo (JPEG, PNG, WebP, ...). At most PRODCAT MAX_UPLOAD_BYTES "
        "bytes (413 above) and MAX_IMAGE_PIXELS pixels.",
    )
    top_k = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="How many labels to return, best first: 1 to the model's number of labels "
        "(default PRODCAT TOP_K).",
    )

    explain = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also return what the model attended to (title words, 7x7 photo regions, "
        "text/image shares), from the same forward pass.",
    )

    def validate_image(self, upload: UploadedFile) -> UploadedFile:
        check_upload_size(upload.size)
        return upload


class LabelScoreSerializer(serializers.Serializer):
    label = serializers.CharField()
    score = serializers.FloatField(help_text="Calibrated probability, 0 to 1.")


class StoredLabelSerializer(LabelScoreSerializer):
    source = serializers.ChoiceField(
        choices=["model", "neighbours", "name"],
        default="model",
        help_text='Where the label came from: "model" (the trained model), "neighbours" (products '
        'filed under that category, most similar to this one), "name" (the category\'s name '
        "and description: a category without products yet).",
    )


class VerdictFields(serializers.Serializer):
    """The out-of-taxonomy verdict, shared by stored suggestions and ``suggest/``."""

    out_of_taxonomy = serializers.BooleanField(
        read_only=True,
        help_text="True when the product probably fits none of the shop's categories: such a "
        "suggestion is never auto-accepted; file the product by hand (or create a category).",
    )
    ood_score = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="The out-of-taxonomy detector's score (higher = further outside); null "
        "when not computed.",
    )
    ood_threshold = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="The calibrated threshold ood_score is compared with (out_of_taxonomy = "
        "score above it); null when not computed.",
    )
    ood_reason = serializers.CharField(
        read_only=True, help_text="Why it was flagged, in a few words; empty when not flagged."
    )


class ModelInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()


class ExplanationSerializer(serializers.Serializer):
    tokens = serializers.ListField(
        child=serializers.ListField(),
        help_text="[word, weight] pairs of the title, weights summing to 1 (empty: no title).",
    )
    regions = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="7x7 attention weights over the photo, row-major from the top left, summing "
        "to 1 (all zeros: no photo).",
    )
    modality_weight = serializers.DictField(
        child=serializers.FloatField(), help_text='Share of attention on "text" and "image".'
    )


class SuggestResponseSerializer(VerdictFields):
    labels = LabelScoreSerializer(many=True, help_text="Best first, top_k long.")
    explanation = ExplanationSerializer(
        required=False, help_text="Only with explain=true in the request."
    )
    model = ModelInfoSerializer()
    auto_accept = serializers.BooleanField(
        help_text="Whether the top score reaches the checkpoint's validated threshold, i.e. "
        "what auto-accept would do (whether or not PRODCAT AUTO_ACCEPT is on)."
    )
    threshold = serializers.FloatField(
        allow_null=True, help_text="The checkpoint's auto-accept threshold; null if it has none."
    )


# --------------------------------------------------------------------------- suggestions


class ProductRefSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="The product model, as <app_label>.<ModelName>.")
    pk = serializers.CharField(help_text="The product's primary key, as text.")


class CategoryRefSerializer(serializers.Serializer):
    pk = serializers.CharField()
    name = serializers.CharField(allow_null=True, help_text="null when it no longer exists.")


class SuggestionModelSerializer(serializers.Serializer):
    name = serializers.CharField(source="model_name")
    version = serializers.CharField(source="model_version")


def _product_model(suggestion: CategorySuggestion) -> type[models.Model] | None:
    return suggestion.content_type.model_class()


def _adapter(suggestion: CategorySuggestion) -> Any:
    model = _product_model(suggestion)
    try:
        return get_adapter(model) if model is not None else None
    except LookupError:
        return None  # the product model was unregistered since


CategoryNames = dict[tuple[int, str], str]  # (content type id, category key) -> label


def category_names(suggestions: Iterable[CategorySuggestion]) -> CategoryNames:
    """Labels (full paths in a tree) of the matched and corrected categories of
    ``suggestions``: a constant number of queries per product type, however many."""
    wanted: dict[int, set[str]] = defaultdict(set)
    adapters: dict[int, Any] = {}
    for suggestion in suggestions:
        keys = {key for key in (suggestion.category_pk, suggestion.correction_pk) if key}
        if keys:
            wanted[suggestion.content_type_id] |= keys
            adapters.setdefault(suggestion.content_type_id, _adapter(suggestion))
    names: CategoryNames = {}
    for ct_id, keys in wanted.items():
        adapter = adapters[ct_id]
        if adapter is None:
            continue
        for key, label in adapter.category_labels(sorted(keys)).items():
            names[(ct_id, key)] = label
    return names


class SuggestionListSerializer(serializers.ListSerializer):
    def to_representation(self, data: Any) -> list[Any]:
        items = list(data.all() if isinstance(data, models.manager.BaseManager) else data)
        self.child.prefetched_names = category_names(items)
        return super().to_representation(items)


class SuggestionSerializer(VerdictFields, serializers.ModelSerializer):
    """A stored suggestion, as ``GET suggestions/<id>/`` and the review endpoints return it.

    Category names are fetched for a whole list at once (``SuggestionListSerializer``).
    """

    prefetched_names: CategoryNames | None = None

    url = serializers.SerializerMethodField()
    product = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=SuggestionStatus.choices, read_only=True)
    labels = StoredLabelSerializer(many=True, read_only=True)
    category = serializers.SerializerMethodField(
        help_text="The shop category the top label matched (CATEGORY_MATCHER); null if none."
    )
    correction = serializers.SerializerMethodField(
        help_text="The category a reviewer chose instead of the suggestion; null if none."
    )
    model = SuggestionModelSerializer(source="*", read_only=True)
    reviewed_by = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField(
        help_text="Why the suggestion failed, or for a ready one a notice about its inputs "
        "(e.g. the photo was not used); empty otherwise. Server paths are never shown."
    )
    explanation = serializers.JSONField(
        read_only=True,
        allow_null=True,
        help_text=(
            "What the model attended to, stored by the worker with the labels: "
            '{"tokens": [[word, weight], ...], "regions": 7x7 weights (row-major from the '
            'top-left of the photo), "modality_weight": {"text": share, "image": share}}. '
            "Null until the suggestion is ready."
        ),
    )

    class Meta:
        model = CategorySuggestion
        list_serializer_class = SuggestionListSerializer
        fields = [
            "id",
            "url",
            "product",
            "status",
            "is_current",
            "labels",
            "label",
            "score",
            "category",
            "correction",
            "out_of_taxonomy",
            "ood_score",
            "ood_threshold",
            "ood_reason",
            "auto_accepted",
            "model",
            "explanation",
            "fingerprint",
            "error",
            "note",
            "reviewed_by",
            "reviewed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, suggestion: CategorySuggestion) -> str:
        path = reverse("prodcat_api:suggestion-detail", kwargs={"pk": suggestion.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    @extend_schema_field(ProductRefSerializer)
    def get_product(self, suggestion: CategorySuggestion) -> dict[str, str]:
        model = _product_model(suggestion)
        ct = suggestion.content_type
        label = model._meta.label if model is not None else f"{ct.app_label}.{ct.model}"
        return {"type": label, "pk": suggestion.object_id}

    def _category_ref(self, suggestion: CategorySuggestion, pk: str) -> dict[str, Any] | None:
        if not pk:
            return None
        if self.prefetched_names is None:  # a single suggestion, not part of a list
            self.prefetched_names = category_names([suggestion])
        return {"pk": pk, "name": self.prefetched_names.get((suggestion.content_type_id, pk))}

    @extend_schema_field(CategoryRefSerializer(allow_null=True))
    def get_category(self, suggestion: CategorySuggestion) -> dict[str, Any] | None:
        return self._category_ref(suggestion, suggestion.category_pk)

    @extend_schema_field(CategoryRefSerializer(allow_null=True))
    def get_correction(self, suggestion: CategorySuggestion) -> dict[str, Any] | None:
        return self._category_ref(suggestion, suggestion.correction_pk)

    @extend_schema_field(serializers.CharField())
    def get_error(self, suggestion: CategorySuggestion) -> str:
        return without_paths(suggestion.error)  # rows stored before errors were cleaned too

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_reviewed_by(self, suggestion: CategorySuggestion) -> str | None:
        user = suggestion.reviewed_by
        return None if user is None else user.get_username()


class AcceptRequestSerializer(serializers.Serializer):
    """``POST suggestions/<id>/accept/``: both flags default to false (an empty body is fine)."""

    override = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Replace a decision already taken on this suggestion (without it: 409).",
    )
    confirm_category_change = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Accept even though the product's category changed since the suggestion "
        "was made (without it: 409, code category_changed).",
    )


class RejectRequestSerializer(serializers.Serializer):
    """``POST suggestions/<id>/reject/``: an optional correction and note."""

    override = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Replace a decision already taken on this suggestion (without it: 409).",
    )

    category = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The right category, if you know it: its primary key, or a name/slug the "
        "CATEGORY_MATCHER resolves (the primary key wins when both fit). The product is "
        "filed under it.",
    )
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Why, for the audit trail."
    )
