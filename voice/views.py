"""HTTP endpoints of the widget: the session token a page needs before it opens the voice WebSocket."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_tenants.utils import tenant_context

from aura.api.parsers import BadInputError, parse_json
from aura.ratelimit import hit
from billing.metrics import QUOTA_REFUSALS
from billing.sessions import SessionRefusedError, check_new_session
from conversations.queries import resumable_conversation
from tenants.queries import widget_key
from voice.tokens import TOKEN_TTL_S, issue_token


def _error(status: int, code: str, message: str, origin: str = "", retry_after: int = 0) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    if origin:
        _allow(response, origin)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def _rate_limited(origin: str, retry_after_s: int) -> JsonResponse:
    return _error(429, "rate_limited", "Too many session requests; try again shortly.", origin, retry_after_s)


def _allow(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    return response


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


@csrf_exempt  # no cookies are read: the key, the Origin header and rate limits are the whole check
def widget_session(request: HttpRequest) -> HttpResponse:
    origin = request.headers.get("Origin", "")
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        if origin:
            _allow(response, origin)
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = "600"
        return response
    if request.method != "POST":
        return _error(405, "method_not_allowed", "Use POST.", origin)
    try:
        body = parse_json(request.body or b"{}")
    except BadInputError as bad:
        code = "invalid_request" if bad.status == 400 else bad.code
        return _error(bad.status, code, f"The body must be JSON: {bad.message}", origin)
    key_value = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key_value, str) or not key_value:
        return _error(400, "invalid_request", 'The body must include "key".', origin)
    visitor_id = body.get("visitor_id") or ""
    if not isinstance(visitor_id, str):
        return _error(400, "invalid_request", "visitor_id must be a string.", origin)

    decision = hit(
        f"widget-ip:{_client_ip(request)}", limit=settings.AURA_WIDGET_SESSIONS_PER_IP_PER_MINUTE, window_s=60
    )
    if not decision.allowed:
        return _rate_limited(origin, decision.retry_after_s)
    key = widget_key(key_value)
    if key is None or not key.organization.is_ready:
        return _error(404, "unknown_key", "This widget key does not exist or has been turned off.", origin)
    if not origin or not key.allows_origin(origin):
        return _error(
            403,
            "origin_not_allowed",
            "This assistant is not enabled for this website. Its owner can allow it in the admin.",
            origin,
        )
    resume = body.get("resume")
    if resume is not None and not isinstance(resume, str):
        return _error(400, "invalid_request", "resume must be a conversation id.", origin)
    resumable = None
    if resume and visitor_id:
        with tenant_context(key.organization):
            resumable = resumable_conversation(resume, assistant_id=key.assistant_id, visitor_id=visitor_id)
    # Counted only for requests from an allowed site: anyone can read a public key off a page, and
    # must not be able to use up the site's own sessions from elsewhere.
    decision = hit(f"widget-key:{key.key}", limit=settings.AURA_WIDGET_SESSIONS_PER_KEY_PER_MINUTE, window_s=60)
    if not decision.allowed:
        return _rate_limited(origin, decision.retry_after_s)
    try:  # the plan's hard cap and concurrent sessions, before any provider is called
        check_new_session(key.organization_id)
    except SessionRefusedError as refused:
        QUOTA_REFUSALS.labels(refused.code).inc()
        retry_after = 60 if refused.http_status == 429 else 0
        return _error(refused.http_status, refused.code, refused.message, origin, retry_after)
    token, grant = issue_token(
        key, origin=origin, visitor_id=visitor_id, resume_conversation_id=str(resumable.pk) if resumable else None
    )
    scheme = "wss" if request.is_secure() else "ws"
    return _allow(
        JsonResponse(
            {
                "token": token,
                "ws_url": f"{scheme}://{request.get_host()}/ws/voice/?token={token}",
                "expires_in": TOKEN_TTL_S,
                "conversation_id": grant.conversation_id,
                "resumed": grant.resumed,
            }
        ),
        origin,
    )
