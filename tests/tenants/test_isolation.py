"""A tenant admin sees only their own organization, and only on its host."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from tests.conftest import PASSWORD
from voice.models import Assistant


def _login(host: str, username: str, password: str = PASSWORD) -> tuple[Client, int, str]:
    client = Client(HTTP_HOST=host)
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, follow=True)
    return client, response.status_code, response.content.decode()


@pytest.mark.django_db
def test_tenant_admin_logs_in_on_own_host_and_sees_only_own_assistants(alpha, beta):
    client, status, body = _login(alpha.host, alpha.admin_email)
    assert status == 200
    assert "Log out" in body
    assert "Alpha · AURA" in body

    page = client.get("/admin/voice/assistant/").content.decode()
    assert "Alpha assistant" in page
    assert "Beta assistant" not in page


@pytest.mark.django_db
def test_credentials_fail_on_another_tenant_and_on_the_platform(alpha, beta):
    for host in (beta.host, "localhost"):
        _, status, body = _login(host, alpha.admin_email)
        assert status == 200
        assert "Please enter the correct username and password" in body, host


@pytest.mark.django_db
def test_a_session_cookie_from_one_tenant_is_worthless_on_another(alpha, beta):
    client, _, _ = _login(alpha.host, alpha.admin_email)
    cookie = client.cookies["sessionid"].value

    other = Client(HTTP_HOST=beta.host)
    other.cookies["sessionid"] = cookie
    response = other.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_another_tenants_object_id_is_not_found(alpha, beta):
    with tenant_context(beta.organization):
        beta_assistant_id = Assistant.objects.get().pk
        beta_name = Assistant.objects.get().name
    client, _, _ = _login(alpha.host, alpha.admin_email)

    response = client.get(f"/admin/voice/assistant/{beta_assistant_id}/change/", follow=True)
    assert beta_name not in response.content.decode()


@pytest.mark.django_db
def test_platform_staff_see_organizations_but_not_tenant_models(alpha, django_user_model):
    django_user_model.objects.create_superuser("staffer", "staffer@aura.example", PASSWORD)
    client, _status, body = _login("localhost", "staffer")
    assert "Log out" in body

    page = client.get("/admin/tenants/organization/").content.decode()
    assert "Alpha" in page
    assert "Beta" in page
    assert client.get("/admin/voice/assistant/").status_code == 404


@pytest.mark.django_db
def test_unknown_host_gets_a_404_page():
    response = Client(HTTP_HOST="nobody.localhost").get("/admin/")

    assert response.status_code == 404
    assert "No organization is served at" in response.content.decode()
