"""``Authorization: Bearer sk_<prefix>_<secret>``: the key names the organization, and the request runs
in that organization's schema from here on (the platform host itself routes to the public schema)."""

from __future__ import annotations

import hmac

from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from tenants.actions import do_touch_api_key, hash_api_key
from tenants.models import ApiKey, Organization
from tenants.queries import api_key_by_prefix, split_api_key


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
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("This API key is not valid.", "invalid_api_key") from None
        key = self._find(raw)
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
    def _find(raw: str) -> ApiKey:
        parts = split_api_key(raw)
        key = api_key_by_prefix(parts[0]) if parts else None
        if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(raw)):
            raise exceptions.AuthenticationFailed("This API key is not valid.", "invalid_api_key")
        return key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
