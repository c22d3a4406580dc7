"""HTTP endpoints of the widget: the session token a page needs before it opens the voice WebSocket."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_tenants.utils import tenant_context

from billing.metrics import QUOTA_REFUSALS
from billing.sessions import SessionRefusedError, check_new_session
from conversations.queries import resumable_conversation
from conversations.visitors import InvalidVisitorIdError, check_visitor_id
from core.api.parsers import BadInputError, parse_json
from core.ratelimit import hit
from tenants.queries import widget_key
from voice.tokens import TOKEN_TTL_S, identify_widget_visitor, issue_token, resume_allowed, resume_token


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


_KEY_SHAPE = re.compile(r"pk_[A-Za-z0-9_-]{1,61}")  # what a preflight may name (no NUL reaches a query)


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


@csrf_exempt  # no cookies are read: the key, the Origin header and rate limits are the whole check
def widget_session(request: HttpRequest) -> HttpResponse:
    # CORS headers go only to an origin the widget key allows: a preflight names the key in the query
    # string (?key=pk_…, as widget.js sends it), and answers before the key and origin are known carry none.
    origin = request.headers.get("Origin", "")
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        named = request.GET.get("key", "")
        preflight_key = widget_key(named) if origin and _KEY_SHAPE.fullmatch(named) else None
        if preflight_key is not None and preflight_key.organization.is_ready and preflight_key.allows_origin(origin):
            _allow(response, origin)
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = "600"
        return response
    if request.method != "POST":
        return _error(405, "method_not_allowed", "Use POST.")
    try:
        body = parse_json(request.body or b"{}")
    except BadInputError as bad:
        code = "invalid_request" if bad.status == 400 else bad.code
        return _error(bad.status, code, f"The body must be JSON: {bad.message}")
    key_value = body.get("key") if isinstance(body, dict) else None
    if key_value is None and isinstance(body, dict):
        key_value = request.GET.get("key")
    if not isinstance(key_value, str) or not key_value:
        return _error(400, "invalid_request", 'The body must include "key".')
    if request.GET.get("key", key_value) != key_value:
        return _error(400, "invalid_request", "The key in the address and the key in the body differ.")
    visitor_id = body.get("visitor_id") or ""  # a site's signed-in user: trusted only with its visitor_hash
    if visitor_id:
        try:
            check_visitor_id(visitor_id)
        except InvalidVisitorIdError as invalid:
            return _error(400, "invalid_visitor_id", str(invalid))
    for field in ("visitor_hash", "visitor_token", "resume", "resume_token"):
        if body.get(field) is not None and not isinstance(body[field], str):
            return _error(400, "invalid_request", f"{field} must be a string.")

    decision = hit(
        f"widget-ip:{_client_ip(request)}", limit=settings.AURA_WIDGET_SESSIONS_PER_IP_PER_MINUTE, window_s=60
    )
    if not decision.allowed:
        return _rate_limited("", decision.retry_after_s)
    key = widget_key(key_value)
    if key is None or not key.organization.is_ready:
        return _error(404, "unknown_key", "This widget key does not exist or has been turned off.")
    if not origin or not key.allows_origin(origin):
        return _error(
            403,
            "origin_not_allowed",
            "This assistant is not enabled for this website. Its owner can allow it in the admin.",
        )
    visitor = identify_widget_visitor(
        key, visitor_id=visitor_id, visitor_hash=body.get("visitor_hash"), token=body.get("visitor_token")
    )
    # Only the session that began a conversation holds its resume token; the token names the visitor too.
    resume, resumable = body.get("resume") or "", None
    if resume and resume_allowed(
        body.get("resume_token"),
        organization_id=key.organization_id,
        conversation_id=resume,
        visitor_id=visitor.visitor_id,
    ):
        with tenant_context(key.organization):  # a widget conversation only: never an API or phone one
            resumable = resumable_conversation(resume, assistant_id=key.assistant_id, visitor_id=visitor.visitor_id)
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
        key,
        origin=origin,
        visitor_id=visitor.visitor_id,
        resume_conversation_id=str(resumable.pk) if resumable else None,
    )
    scheme = "wss" if request.is_secure() else "ws"
    answer: dict[str, object] = {
        "token": token,
        "ws_url": f"{scheme}://{request.get_host()}/ws/voice/?token={token}",
        "expires_in": TOKEN_TTL_S,
        "conversation_id": grant.conversation_id,
        "resumed": grant.resumed,
        "resume_token": resume_token(
            organization_id=key.organization_id, conversation_id=grant.conversation_id, visitor_id=visitor.visitor_id
        ),
        "identity": "verified" if visitor.verified else "anonymous",
    }
    if visitor.token:  # an anonymous visitor: the widget keeps it to be the same visitor next time
        answer["visitor_token"] = visitor.token
    return _allow(JsonResponse(answer), origin)
