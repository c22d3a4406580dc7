"""One error shape everywhere (401, 403, 404, 405, 400, 415, 429, 500) and rate limits with Retry-After."""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError

from tests.api.conftest import api_client, error_code
from voice.api.views import AssistantViewSet


@pytest.mark.django_db
def test_unknown_api_paths_answer_json_404(alpha_api):
    response = alpha_api.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.django_db
def test_method_not_allowed_bad_json_and_wrong_media_type(alpha_api):
    assert error_code(alpha_api.put("/api/v1/assistants/", {}, format="json")) == "method_not_allowed"

    bad = alpha_api.post("/api/v1/assistants/", "{not json", content_type="application/json")
    assert bad.status_code == 400
    assert error_code(bad) == "parse_error"

    form = alpha_api.post("/api/v1/assistants/", "name=x", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415
    assert error_code(form) == "unsupported_media_type"

    nul = alpha_api.post("/api/v1/assistants/", {"name": "a\x00b"}, format="json")
    assert nul.status_code == 400


@pytest.mark.django_db
def test_validation_errors_carry_field_details(alpha_api):
    response = alpha_api.post(
        "/api/v1/assistants/", {"name": "", "end_silence_ms": 5, "llm_fallbacks": ["nonsense"]}, format="json"
    )

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert {"name", "end_silence_ms"} <= set(response.json()["error"]["details"])


@pytest.mark.django_db
def test_a_crash_is_a_500_in_the_same_shape(alpha_api, monkeypatch):
    def boom(self, request, *args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(AssistantViewSet, "list", boom)

    response = alpha_api.get("/api/v1/assistants/")

    assert response.status_code == 500
    assert error_code(response) == "internal_error"
    assert "kaboom" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_database_that_is_unavailable_is_a_503_with_retry_after(alpha_api, monkeypatch, error):
    def unavailable(self, request, *args, **kwargs):
        raise error("terminating connection due to administrator command")

    monkeypatch.setattr(AssistantViewSet, "list", unavailable)

    response = alpha_api.get("/api/v1/assistants/")

    assert response.status_code == 503
    assert error_code(response) == "database_unavailable" and response["Retry-After"] == "5"
    assert "administrator" not in response.content.decode()


@pytest.mark.django_db
def test_the_per_key_limit_answers_429_with_retry_after(alpha, make_key, settings):
    settings.AURA_API_RATE_PER_KEY_PER_MINUTE = 3
    client = api_client(make_key(alpha, ["read"]))

    statuses = [client.get("/api/v1/assistants/") for _ in range(8)]  # a window edge may reset the count once

    limited = [r for r in statuses if r.status_code == 429]
    assert limited
    assert error_code(limited[0]) == "rate_limited"
    assert 1 <= int(limited[0]["Retry-After"]) <= 61
    other_key = api_client(make_key(alpha, ["read"]))
    assert other_key.get("/api/v1/assistants/").status_code == 200


@pytest.mark.django_db
def test_the_per_organization_limit_counts_every_key(alpha, beta, make_key, settings):
    settings.AURA_API_RATE_PER_ORGANIZATION_PER_MINUTE = 4
    clients = [api_client(make_key(alpha, ["read"])) for _ in range(3)]

    statuses = [clients[n % 3].get("/api/v1/assistants/").status_code for n in range(10)]

    assert 429 in statuses
    assert api_client(make_key(beta, ["read"])).get("/api/v1/assistants/").status_code == 200


@pytest.mark.django_db
def test_schema_and_docs_are_public():
    client = api_client(None)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/v1/assistants/" in schema.json()["paths"]
    assert client.get("/api/docs/").status_code == 200
