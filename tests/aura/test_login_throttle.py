"""Admin logins are throttled after repeated failures (django-axes, aura/login_throttle.py): per account —
qualified by the organization's schema, so a namesake elsewhere is not locked — and per client address,
with a clear 429 page; an unknown account is answered exactly like a wrong password."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import PASSWORD

LIMIT = 3
WRONG = "not-the-password-1"


@pytest.fixture(autouse=True)
def _low_limit(settings) -> None:
    settings.AXES_FAILURE_LIMIT = LIMIT


def _login(host: str, username: str, password: str, address: str = "198.51.100.1"):
    client = Client(HTTP_HOST=host, REMOTE_ADDR=address)
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


@pytest.mark.django_db
def test_a_tenant_admin_is_locked_out_after_repeated_failures_with_a_clear_message(alpha):
    for _ in range(LIMIT - 1):
        response = _login(alpha.host, alpha.admin_email, WRONG)
        assert response.status_code == 200
        assert "correct username and password" in response.content.decode()

    locked = _login(alpha.host, alpha.admin_email, WRONG)
    after = _login(alpha.host, alpha.admin_email, PASSWORD)  # even the right password, for the cool-off

    assert locked.status_code == 429
    assert after.status_code == 429
    assert "Too many failed logins" in after.content.decode()
    assert f"after {LIMIT} failed attempts" in after.content.decode()


@pytest.mark.django_db
def test_an_unknown_account_is_answered_like_a_wrong_password(alpha):
    known = [_login(alpha.host, alpha.admin_email, WRONG, "198.51.100.2") for _ in range(LIMIT)]
    unknown = [_login(alpha.host, "nobody@alpha.example", WRONG, "198.51.100.3") for _ in range(LIMIT)]

    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [200] * (LIMIT - 1) + [429]
    first_known = known[0].content.decode().replace(alpha.admin_email, "USER")
    first_unknown = unknown[0].content.decode().replace("nobody@alpha.example", "USER")
    assert _error_list(first_known) == _error_list(first_unknown)
    assert known[-1].content == unknown[-1].content


def _error_list(page: str) -> str:
    start = page.index('class="errornote"')
    return page[start : page.index("</p>", start)]


@pytest.mark.django_db
def test_locking_an_account_in_one_organization_leaves_its_namesake_in_another_alone(alpha, beta):
    from django_tenants.utils import tenant_context

    with tenant_context(beta.organization):
        User.objects.create_superuser(alpha.admin_email, alpha.admin_email, PASSWORD)
    for index in range(LIMIT):
        _login(alpha.host, alpha.admin_email, WRONG, f"198.51.100.{10 + index}")  # one account, many clients

    assert _login(alpha.host, alpha.admin_email, PASSWORD, "198.51.100.20").status_code == 429
    assert _login(beta.host, alpha.admin_email, PASSWORD, "198.51.100.21").status_code == 302  # logged in


@pytest.mark.django_db
def test_one_client_trying_many_accounts_is_locked_out_and_others_are_not(alpha):
    for index in range(LIMIT):
        _login(alpha.host, f"guess{index}@alpha.example", WRONG, "198.51.100.30")

    assert _login(alpha.host, alpha.admin_email, PASSWORD, "198.51.100.30").status_code == 429
    assert _login(alpha.host, alpha.admin_email, PASSWORD, "198.51.100.31").status_code == 302


@pytest.mark.django_db
def test_platform_staff_logins_are_throttled_too(alpha):
    User.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    for _ in range(LIMIT):
        _login("localhost", "ops", WRONG, "198.51.100.40")

    assert _login("localhost", "ops", PASSWORD, "198.51.100.41").status_code == 429


@pytest.mark.django_db
def test_while_redis_is_down_logins_still_work_unthrottled(alpha, settings):
    from aura.embedded_services import free_port

    dead = f"redis://127.0.0.1:{free_port()}/1"
    settings.CACHES = {alias: {**config, "LOCATION": dead} for alias, config in settings.CACHES.items()}

    assert _login(alpha.host, alpha.admin_email, WRONG, "198.51.100.50").status_code == 200
    assert _login(alpha.host, alpha.admin_email, PASSWORD, "198.51.100.50").status_code == 302
