"""Bearer API keys: the key names the organization; revoked, expired and unknown keys fail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.actions import do_revoke_api_key, do_rotate_api_key
from tenants.models import ApiKey
from tests.api.conftest import api_client, error_code


@pytest.mark.django_db
def test_a_valid_key_reads_its_organizations_assistants(alpha, make_key):
    response = api_client(make_key(alpha, ["read"])).get("/api/v1/assistants/")

    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == ["Alpha assistant"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer", "invalid_api_key"),
        ("Basic dXNlcjpwYXNz", "invalid_api_key"),
        ("Bearer sk_nope", "invalid_api_key"),
        ("Bearer sk_abcdefghijkl_wrongsecret", "invalid_api_key"),
        ("Bearer pk_abcdefghijkl_x", "invalid_api_key"),
    ],
)
def test_missing_or_unknown_keys_get_401(alpha, header, code):
    client = api_client(None)
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/assistants/")

    assert response.status_code == 401
    assert error_code(response) == code
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_a_right_prefix_with_a_wrong_secret_fails(alpha, make_key):
    secret = make_key(alpha)
    forged = secret[: secret.rindex("_") + 1] + "x" * 43

    assert api_client(forged).get("/api/v1/assistants/").status_code == 401


@pytest.mark.django_db
def test_a_revoked_key_fails_at_once_even_when_cached(alpha, make_key):
    secret = make_key(alpha)
    client = api_client(secret)
    assert client.get("/api/v1/assistants/").status_code == 200  # now cached

    do_revoke_api_key(ApiKey.objects.get(prefix=secret.split("_")[1]))
    response = client.get("/api/v1/assistants/")

    assert response.status_code == 401
    assert error_code(response) == "api_key_revoked"


@pytest.mark.django_db
def test_an_expired_key_fails(alpha, make_key):
    secret = make_key(alpha, ["read"], expires_at=timezone.now() + timedelta(seconds=30))
    ApiKey.objects.filter(prefix=secret.split("_")[1]).update(expires_at=timezone.now() - timedelta(seconds=1))
    from tenants.cache import forget_cached_api_key

    forget_cached_api_key(secret.split("_")[1])

    response = api_client(secret).get("/api/v1/assistants/")

    assert response.status_code == 401
    assert error_code(response) == "api_key_expired"


@pytest.mark.django_db
def test_the_key_is_stored_only_as_a_hash_and_last_use_is_recorded_once_a_minute(alpha, make_key):
    secret = make_key(alpha)
    key = ApiKey.objects.get(prefix=secret.split("_")[1])
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert key.last_used_at is None

    client = api_client(secret)
    client.get("/api/v1/assistants/")
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    client.get("/api/v1/assistants/")

    assert first is not None
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first  # not rewritten within the minute


@pytest.mark.django_db
def test_rotation_issues_a_new_key_and_stops_the_old_one(alpha, make_key):
    secret = make_key(alpha)
    old = ApiKey.objects.get(prefix=secret.split("_")[1])

    issued = do_rotate_api_key(old)

    assert api_client(secret).get("/api/v1/assistants/").status_code == 401
    assert api_client(issued.secret).get("/api/v1/assistants/").status_code == 200
    assert issued.api_key.rotated_from_id == old.pk
    assert issued.api_key.scopes == old.scopes


@pytest.mark.django_db
def test_rotation_with_grace_keeps_the_old_key_working_for_a_while(alpha, make_key):
    secret = make_key(alpha)
    old = ApiKey.objects.get(prefix=secret.split("_")[1])

    do_rotate_api_key(old, grace=timedelta(hours=1))

    assert api_client(secret).get("/api/v1/assistants/").status_code == 200
    old.refresh_from_db()
    assert old.expires_at is not None
    assert old.expires_at <= timezone.now() + timedelta(hours=1)
