"""Every error of the API has one shape: ``{"error": {"code", "message", "details"}}``.

``code`` is stable (clients branch on it; docs/api.md lists them), ``message`` is for people,
``details`` holds field errors for ``validation_error`` and is null otherwise.
"""

from __future__ import annotations

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

# DRF's own codes, renamed where ours say more.
INTERNAL_ERROR_MESSAGE = "Something went wrong on our side; it has been logged."
_RENAMED = {"authentication_failed": "invalid_api_key", "throttled": "rate_limited", "invalid": "validation_error"}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the object."
    default_code = "conflict"


class DatabaseUnavailable(exceptions.APIException):
    """The database could not be reached or dropped the connection (a restart, "too many clients"):
    nothing was done; the client may send the request again after ``Retry-After``."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is briefly unavailable; retry in a few seconds."
    default_code = "database_unavailable"
    wait = 5  # seconds, sent as Retry-After


def error_body(code: str, message: str, details: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details}}


def _as_api_exception(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound("Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, ProtectedError | RestrictedError):
        return Conflict("Other objects still refer to this one; remove them first.", "in_use")
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("API request failed: the database is unavailable: %s", exc)
        return DatabaseUnavailable()
    return exc


def _code_and_message(exc: exceptions.APIException) -> tuple[str, str, object]:
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, list) and len(detail) == 1 and not isinstance(detail[0], dict | list):
            code = getattr(detail[0], "code", "invalid")
            return _RENAMED.get(code, code), str(detail[0]), {"non_field_errors": [str(detail[0])]}
        return "validation_error", "The request is not valid; see details.", detail
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    message = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
    return _RENAMED.get(code, code), str(message), None


def exception_handler(exc: Exception, context: dict[str, object]) -> Response:
    exc = _as_api_exception(exc)
    set_rollback()
    if not isinstance(exc, exceptions.APIException):
        logger.exception("API request failed", exc_info=exc)
        return Response(
            error_body("internal_error", INTERNAL_ERROR_MESSAGE),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    headers = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    code, message, details = _code_and_message(exc)
    if isinstance(exc, exceptions.Throttled):
        message = f"Too many requests; retry in {headers.get('Retry-After', '1')} s."
    return Response(error_body(code, message, details), status=exc.status_code, headers=headers)


# Django's own error views for paths under /api/ that never reached DRF (unknown URL, a crash in middleware).
def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body("internal_error", "Something went wrong on our side; it has been logged."), status=500
    )
