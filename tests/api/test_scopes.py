"""Scopes hold: read reads, write changes, admin alone manages keys and webhooks."""

from __future__ import annotations

import pytest

from tests.api.conftest import api_client, error_code


@pytest.mark.django_db
def test_a_read_key_cannot_write(alpha, make_key):
    client = api_client(make_key(alpha, ["read"]))

    response = client.post("/api/v1/assistants/", {"name": "Nope"}, format="json")

    assert response.status_code == 403
    assert error_code(response) == "insufficient_scope"
    assert client.get("/api/v1/assistants/").status_code == 200


@pytest.mark.django_db
def test_a_write_key_writes_but_cannot_manage_keys_or_webhooks(alpha, make_key):
    client = api_client(make_key(alpha, ["write"]))

    assert client.post("/api/v1/assistants/", {"name": "Sales"}, format="json").status_code == 201
    for path in ("/api/v1/api-keys/", "/api/v1/webhooks/", "/api/v1/webhook-deliveries/"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert error_code(response) == "insufficient_scope"
    response = client.post("/api/v1/api-keys/", {"name": "escalate", "scopes": ["admin"]}, format="json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_an_admin_key_does_everything(alpha, make_key):
    client = api_client(make_key(alpha, ["admin"]))

    for path in ("/api/v1/assistants/", "/api/v1/api-keys/", "/api/v1/webhooks/", "/api/v1/usage/"):
        assert client.get(path).status_code == 200, path
