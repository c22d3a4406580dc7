"""API fixtures: keys of the seeded organizations and clients that send them to the platform host."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from rest_framework.test import APIClient

from tenants.actions import do_create_api_key
from tenants.models import Organization
from tests.conftest import SeededTenant

PLATFORM_HOST = "localhost"


def api_client(secret: str | None) -> APIClient:
    client = APIClient(HTTP_HOST=PLATFORM_HOST)
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def make_key() -> Callable[..., str]:
    """make_key(tenant, scopes=["admin"], expires_at=None) → the secret of a new key."""

    def make(
        tenant: SeededTenant | Organization, scopes: list[str] | None = None, expires_at: datetime | None = None
    ) -> str:
        organization = tenant.organization if isinstance(tenant, SeededTenant) else tenant
        issued = do_create_api_key(
            organization, name="test key", scopes=scopes or ["admin"], expires_at=expires_at, created_by="test"
        )
        return issued.secret

    return make


@pytest.fixture
def alpha_api(alpha, make_key) -> APIClient:
    return api_client(make_key(alpha))


@pytest.fixture
def beta_api(beta, make_key) -> APIClient:
    return api_client(make_key(beta))


def error_code(response: object) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]["code"]
