"""Liveness and readiness probes, on the platform host and on a tenant's host."""

from __future__ import annotations

import pytest
from django.test import Client

from aura.embedded_services import free_port


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["localhost", "alpha.localhost"])
def test_healthz_and_readyz_answer_200_when_everything_is_up(host, alpha):
    client = Client(HTTP_HOST=host)

    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "migrations"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_answers_503_and_names_redis_when_redis_is_down(settings):
    dead = f"redis://127.0.0.1:{free_port()}/1"
    settings.CACHES = {alias: {**config, "LOCATION": dead} for alias, config in settings.CACHES.items()}

    response = Client(HTTP_HOST="localhost").get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True
