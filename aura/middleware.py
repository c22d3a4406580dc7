"""Middleware that runs before tenant routing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict

from aura import health
from aura.metrics import metrics_view
from core import log_context
from core.api.errors import error_body
from core.api.parsers import BadInputError, too_large

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
# Probes and metrics answer on any host name: orchestrators and Prometheus address a process by its
# container name or IP, not by a tenant's domain.
_HOSTLESS = {"/healthz": health.healthz, "/readyz": health.readyz, "/metrics": metrics_view}


class RequestContextMiddleware:
    """Gives every request an id (the proxy's X-Request-ID if sane), bound to each log line and echoed back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        log_context.bind(request=request_id, session="", organization="")
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class SyncStackMiddleware:
    """Last in MIDDLEWARE, sync only: the whole stack above it then runs sync, in the request's thread.

    Every view is sync, and every middleware can run sync. Under ASGI Django would otherwise run each
    async-capable one (sessions, CSRF, auth, messages, tenants, Prometheus, axes …) through
    ``MiddlewareMixin.__acall__``: its ``process_request`` and ``process_response`` each a hop to a thread
    and back to the event loop, about ten round trips a request. The event loop also carries every live
    voice session, so at 200 phone calls each hop queued behind their audio and the voice webhook took
    up to 5.5 s (p95). Django still crosses to the loop and back to resolve the view and for its view
    hooks (CSRF's and Prometheus's ``process_view``), a few round trips instead of about ten.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


class HostlessEndpointsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _HOSTLESS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)


_FORM = "application/x-www-form-urlencoded"


def _refusal(request: HttpRequest, bad: BadInputError) -> JsonResponse:
    """The API's error shape under /api/, the widget's (code and message) elsewhere."""
    if request.path_info.startswith("/api/"):
        body = error_body(bad.code, bad.message)
    else:
        body = {"error": {"code": bad.code, "message": bad.message}}
    return JsonResponse(body, status=bad.status)


class BadInputMiddleware:
    """Bad input refused at the door, once for every view (the JSON body itself is checked where it is
    parsed, by core.api.parsers): a body declared over DATA_UPLOAD_MAX_MEMORY_SIZE (413; multipart file
    uploads have their own limits), and NUL characters in the path, the query string or a form body (400:
    PostgreSQL cannot store them; a lone surrogate cannot arrive there, Django decodes those as U+FFFD).
    Runs before tenant routing and before any view reads a field, so Twilio's webhooks refuse a NUL in
    ``To`` or ``CallSid`` before their signature check."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            self._check(request)
        except BadInputError as bad:
            return _refusal(request, bad)
        except RequestDataTooBig:
            return _refusal(request, too_large())
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view that read a body over the limit (one sent without Content-Length): 413, not Django's 400."""
        if isinstance(exception, RequestDataTooBig):
            return _refusal(request, too_large())
        return None

    @staticmethod
    def _check(request: HttpRequest) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.content_type or ""
        declared = request.META.get("CONTENT_LENGTH") or "0"
        numeric = declared.isascii() and declared.isdigit()  # "²".isdigit() is True, and int() refuses it
        if limit is not None and not content_type.startswith("multipart/") and (not numeric or int(declared) > limit):
            raise too_large() if numeric else BadInputError("Content-Length must be a number.")
        if "\x00" in request.path_info:
            raise BadInputError("The path may not contain NUL characters.", code="invalid_request")
        _check_fields(request.GET, "query string")
        if request.method == "POST" and content_type == _FORM:
            _check_fields(request.POST, "form")


def _check_fields(fields: QueryDict, where: str) -> None:
    for key, values in fields.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            raise BadInputError(f"The {where} may not contain NUL characters.", code="invalid_request")
