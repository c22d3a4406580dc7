"""Middleware that runs before tenant routing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from aura import health
from aura.metrics import metrics_view
from core import log_context

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


class HostlessEndpointsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _HOSTLESS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)
