"""Synchronous classification (the API's ``suggest``) and the stored explanation of a suggestion.

:func:`suggest` and :func:`suggest_explained` load the model in the calling process;
:func:`explain` never does.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from prodcat_django.conf import prodcat_settings
from prodcat_django.models import OPEN_STATUSES, CategorySuggestion, SuggestionStatus

if TYPE_CHECKING:
    from prodcat_django.ml.predictor import Explanation, Prediction
    from prodcat_django.models import ModelVersion


def suggest(title: str, image_bytes: bytes | None, *, top_k: int | None = None) -> Prediction:
    """Classify a title and/or image now (the API's ``suggest`` endpoint).

    Raises ``ValidationError`` (a dict keyed by ``title``/``image``/``top_k``) for an empty
    input, an image over ``MAX_UPLOAD_BYTES`` or ``MAX_IMAGE_PIXELS``, undecodable image data,
    or a ``top_k`` outside 1..number of labels. Loads the model in this process on first use.
    """
    predictor, item, top_k, version = _prepare(title, image_bytes, top_k)
    return _shown(_coalescer(predictor)(item, top_k), version)


# One coalescer per loaded predictor: concurrent requests in this process share forward passes
# (ml/coalesce.py); a predictor dropped after an activation takes its coalescer with it.
_coalescers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_coalescers_lock = threading.Lock()


def _coalescer(predictor: Any) -> Any:
    from prodcat_django.ml.coalesce import Coalescer

    with _coalescers_lock:
        found = _coalescers.get(predictor)
        if found is None:
            ref = weakref.ref(predictor)  # the value must not keep its key alive

            def run(items: Any, top_k: Any) -> Any:
                return ref().predict(items, top_k=top_k)

            found = _coalescers[predictor] = Coalescer(run, max_batch=8)
        return found


def suggest_explained(
    title: str, image_bytes: bytes | None, *, top_k: int | None = None
) -> Explanation:
    """:func:`suggest` with what the model attended to (title words, 7x7 photo regions,
    text/image shares) from the same forward pass; nothing is stored. Same errors."""
    from dataclasses import replace

    predictor, item, top_k, version = _prepare(title, image_bytes, top_k)
    explanation = predictor.explain(item, top_k=top_k)
    return replace(explanation, prediction=_shown(explanation.prediction, version))


def _prepare(
    title: str, image_bytes: bytes | None, top_k: int | None
) -> tuple[Any, Any, int, ModelVersion | None]:
    from prodcat_django.ml.images import DECODE_SIZE, InvalidImageError, load_image
    from prodcat_django.ml.predictor import ProductInput
    from prodcat_django.training.store import active_predictor

    title = (title or "").strip()
    if not title and not image_bytes:
        raise ValidationError({"title": ["Give a title, an image, or both."]})
    top_k = int(prodcat_settings.TOP_K if top_k is None else top_k)
    if top_k < 1:
        raise ValidationError({"top_k": ["top_k must be at least 1."]})
    image = None
    if image_bytes:
        limit = int(prodcat_settings.MAX_UPLOAD_BYTES)
        if len(image_bytes) > limit:
            raise ValidationError(
                {"image": [f"The image is {len(image_bytes)} bytes; the limit is {limit}."]}
            )
        try:
            # Reduced at decode time: the model needs 224 pixels, not a 12 MP photo's worth.
            image = load_image(
                image_bytes,
                max_pixels=int(prodcat_settings.MAX_IMAGE_PIXELS),
                reduce_to=DECODE_SIZE,
            )
        except InvalidImageError as exc:
            raise ValidationError({"image": [str(exc)]}) from None
    active = active_predictor()
    predictor = active.predictor
    n_labels = len(predictor.info.labels)
    if top_k > n_labels:
        raise ValidationError({"top_k": [f"top_k must be between 1 and {n_labels}."]})
    return predictor, ProductInput(title=title, image=image), top_k, active.version


def _shown(prediction: Prediction, version: ModelVersion | None) -> Prediction:
    """A shop-trained version's labels are category pks: show the categories' names."""
    if version is None or version.builtin or not version.label_map:
        return prediction
    from dataclasses import replace

    from prodcat_django.registry import get_adapter_by_label
    from prodcat_django.training.labels import LabelResolver

    try:
        spec = get_adapter_by_label(version.product_model)
    except LookupError:
        return prediction
    resolver = LabelResolver(version, version.name, spec.category_model, record=False)
    labels = tuple(replace(ls, label=resolver.display(ls.label)) for ls in prediction.labels)
    return replace(prediction, labels=labels)


@dataclass(frozen=True)
class StoredExplanation:
    """A suggestion's explanation as the worker stored it; torch-free, so the web process can
    show it. The fields mirror :class:`prodcat_django.ml.predictor.Explanation`, with the
    suggestion's own labels in place of the ``prediction``.
    """

    labels: tuple[tuple[str, float], ...]  # the suggestion's labels, best first
    tokens: tuple[tuple[str, float], ...]  # title words and weights (sum 1; empty: no title)
    regions: tuple[tuple[float, ...], ...]  # 7x7, row-major from top-left (sum 1; zeros: no image)
    modality_weight: dict[str, float]  # share of attention mass on "text" vs "image"


def explain(suggestion: CategorySuggestion) -> StoredExplanation:
    """Which title words and photo regions the model attended to for this suggestion.

    Reads what the worker stored with the suggestion (same forward pass as its labels); never
    loads the model. Raises ``ValidationError`` (code ``no_explanation``) when the row has none:
    not classified yet, failed, or classified before explanations were stored.
    """
    data = suggestion.explanation
    if not isinstance(data, dict):
        if suggestion.status in OPEN_STATUSES:
            message = "The suggestion is not ready yet; its explanation comes with it."
        elif suggestion.status == SuggestionStatus.FAILED:
            message = "The suggestion failed, so there is nothing to explain."
        else:
            message = (
                "This suggestion has no stored explanation (it was made before explanations "
                "were stored); ask for a new suggestion to get one."
            )
        raise ValidationError(message, code="no_explanation")
    try:
        return StoredExplanation(
            labels=tuple((str(d["label"]), float(d["score"])) for d in suggestion.labels or ()),
            tokens=tuple((str(word), float(w)) for word, w in data.get("tokens", ())),
            regions=tuple(tuple(float(v) for v in row) for row in data.get("regions", ())),
            modality_weight={
                str(k): float(v) for k, v in (data.get("modality_weight") or {}).items()
            },
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(
            f"The stored explanation is malformed ({exc}); ask for a new suggestion.",
            code="no_explanation",
        ) from None
