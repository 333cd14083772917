"""API exceptions beyond DRF's own."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException


class UploadTooLarge(APIException):
    """The request or its image is above ``PRODCAT["MAX_UPLOAD_BYTES"]``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "upload_too_large"


class ModelUnavailable(APIException):
    """The web process cannot load the classifier (checkpoint missing or corrupt, ``ml`` extra
    not installed). The details go to the server log, not to the client."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The category model is not available on this server; see its log."
    default_code = "model_unavailable"


class Conflict(APIException):
    """The suggestion is not in a state that allows the request (e.g. accept while pending)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The suggestion cannot be changed in its current state."
    default_code = "conflict"
