"""``Authorization: Bearer sk_<prefix>_<secret>``: the key names the organization, and the request runs
in that organization's schema from here on (the platform host itself routes to the public schema).

Refusals come before work: a request without a key is refused by the permission check without a query;
a key that cannot be one of ours is refused before any lookup; an unknown prefix is looked up once and then
remembered as missing for a few seconds (tenants.queries). Every failed key counts against the client
(``AURA_API_AUTH_FAILURES_PER_CLIENT_PER_MINUTE``, a sliding minute): past the limit a client's keys are
checked against the cache only, and anything not found there is refused with 429 and ``Retry-After``, so
a client guessing keys costs neither the database nor other clients anything.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from core.ratelimit import hit, peek
from tenants.actions import do_touch_api_key, hash_api_key
from tenants.models import ApiKey, Organization
from tenants.queries import api_key_by_prefix, cached_api_key_by_prefix, split_api_key

FAILURE_WINDOW_S = 60


class ApiPrincipal:
    """``request.user`` of an API request: the key, not a person."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.organization: Organization = api_key.organization

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword or len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as “Authorization: Bearer sk_…”.", "invalid_api_key")
        client = _failure_bucket(request)
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise _failed(client) from None
        key = self._find(raw, client)
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.", "api_key_revoked")
        if key.is_expired():
            raise exceptions.AuthenticationFailed("This API key has expired.", "api_key_expired")
        organization = key.organization
        if not organization.is_ready or organization.is_platform:
            raise exceptions.AuthenticationFailed("This API key is not valid.", "invalid_api_key")
        connection.set_tenant(organization)  # every query of this request runs in the tenant's schema
        do_touch_api_key(key)
        return ApiPrincipal(key), key

    @staticmethod
    def _find(raw: str, client: str) -> ApiKey:
        parts = split_api_key(raw)
        if parts is None:
            raise _failed(client)
        limit = settings.AURA_API_AUTH_FAILURES_PER_CLIENT_PER_MINUTE
        blocked = peek(client, limit=limit, window_s=FAILURE_WINDOW_S)
        # A client over its failure limit gets no database work: only a key already cached can pass.
        key = cached_api_key_by_prefix(parts[0]) if not blocked.allowed else api_key_by_prefix(parts[0])
        if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(raw)):
            if not blocked.allowed:
                raise exceptions.Throttled(wait=blocked.retry_after_s)
            raise _failed(client)
        return key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def _failure_bucket(request: Request) -> str:
    return f"api-auth-failures:{request.META.get('REMOTE_ADDR', '')}"


def _failed(client: str) -> exceptions.AuthenticationFailed:
    """Count a failed key against the client, and the refusal to raise."""
    hit(client, limit=settings.AURA_API_AUTH_FAILURES_PER_CLIENT_PER_MINUTE, window_s=FAILURE_WINDOW_S)
    return exceptions.AuthenticationFailed("This API key is not valid.", "invalid_api_key")
