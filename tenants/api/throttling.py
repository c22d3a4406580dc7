"""Rate limits per API key and per organization (all its keys), counted in Redis (core.ratelimit)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from core.ratelimit import hit
from tenants.models import ApiKey

WINDOW_S = 60

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class _ApiThrottle(BaseThrottle):
    retry_after_s = 0

    def bucket(self, key: ApiKey) -> str:
        raise NotImplementedError

    def limit(self) -> int:
        raise NotImplementedError

    def allow_request(self, request: Request, view: APIView) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        decision = hit(self.bucket(key), limit=self.limit(), window_s=WINDOW_S)
        self.retry_after_s = decision.retry_after_s
        return decision.allowed

    def wait(self) -> float:
        return float(self.retry_after_s)


class PerKeyThrottle(_ApiThrottle):
    def bucket(self, key: ApiKey) -> str:
        return f"api-key:{key.pk}"

    def limit(self) -> int:
        return settings.AURA_API_RATE_PER_KEY_PER_MINUTE


class PerOrganizationThrottle(_ApiThrottle):
    def bucket(self, key: ApiKey) -> str:
        return f"api-org:{key.organization_id}"

    def limit(self) -> int:
        return settings.AURA_API_RATE_PER_ORGANIZATION_PER_MINUTE
