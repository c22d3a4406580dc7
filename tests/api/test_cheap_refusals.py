"""Refusals cost little: no key, or a key that cannot be ours, is refused without a query; a client that
keeps sending made-up keys gets 429 with Retry-After and no lookup at all, while its own valid (cached)
key, and every other client, still get in."""

from __future__ import annotations

import secrets

import pytest

from tests.api.conftest import api_client, error_code

LIMIT = 5


def _made_up() -> str:
    return f"sk_{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"


def _client(secret: str | None, address: str):
    client = api_client(secret)
    client.defaults["REMOTE_ADDR"] = address
    return client


@pytest.fixture(autouse=True)
def _low_limit(settings) -> None:
    settings.AURA_API_AUTH_FAILURES_PER_CLIENT_PER_MINUTE = LIMIT


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer sk_nope", "Bearer pk_abcdefghijkl_x"])
def test_no_key_or_a_key_that_cannot_be_ours_costs_no_query(alpha, header, django_assert_num_queries):
    client = _client(None, "192.0.2.1")
    client.get("/api/v1/assistants/")  # the platform host's lookup is now cached
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    with django_assert_num_queries(0):
        response = client.get("/api/v1/assistants/")

    assert response.status_code == 401


@pytest.mark.django_db
def test_a_client_guessing_keys_gets_429_without_a_lookup(alpha, django_assert_num_queries):
    for _ in range(LIMIT):
        response = _client(_made_up(), "192.0.2.7").get("/api/v1/assistants/")
        assert response.status_code == 401
        assert error_code(response) == "invalid_api_key"

    with django_assert_num_queries(0):
        refused = _client(_made_up(), "192.0.2.7").get("/api/v1/assistants/")

    assert refused.status_code == 429
    assert error_code(refused) == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60


@pytest.mark.django_db
def test_the_blocked_clients_cached_valid_key_and_other_clients_still_get_in(alpha, make_key):
    secret = make_key(alpha)
    assert _client(secret, "192.0.2.8").get("/api/v1/assistants/").status_code == 200  # cached now
    for _ in range(LIMIT):
        _client(_made_up(), "192.0.2.8").get("/api/v1/assistants/")
    assert _client(_made_up(), "192.0.2.8").get("/api/v1/assistants/").status_code == 429

    assert _client(secret, "192.0.2.8").get("/api/v1/assistants/").status_code == 200
    assert _client(_made_up(), "192.0.2.9").get("/api/v1/assistants/").status_code == 401  # another client
    assert _client(make_key(alpha), "192.0.2.9").get("/api/v1/assistants/").status_code == 200
