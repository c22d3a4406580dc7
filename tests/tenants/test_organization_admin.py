"""Platform staff open organizations from the platform admin."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import schema_exists

from tenants.models import Organization
from tests.conftest import PASSWORD


@pytest.fixture
def staff_client(django_user_model) -> Client:
    django_user_model.objects.create_superuser("staffer", "staffer@aura.example", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    client.post("/admin/login/", {"username": "staffer", "password": PASSWORD})
    return client


@pytest.mark.django_db
def test_staff_open_an_organization_from_the_admin(staff_client):
    response = staff_client.post(
        "/admin/tenants/organization/add/",
        {"name": "Kappa Cafe", "slug": "kappa", "admin_email": "k@kappa.example", "admin_password": PASSWORD},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    organization = Organization.objects.get(slug="kappa")
    assert organization.is_ready
    assert schema_exists("t_kappa")
    assert organization.domains.get().domain == "kappa.localhost"


@pytest.mark.django_db
@pytest.mark.usefixtures("alpha")
def test_the_admin_form_shows_every_problem_and_creates_nothing(staff_client):
    before = Organization.objects.count()

    response = staff_client.post(
        "/admin/tenants/organization/add/",
        {"name": "Dup", "slug": "alpha", "admin_email": "", "admin_password": "123"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "already exists" in page
    assert "This field is required" in page
    assert "too short" in page
    assert Organization.objects.count() == before


@pytest.mark.django_db
def test_the_slug_help_shows_the_host_pattern_as_text(staff_client):
    page = staff_client.get("/admin/tenants/organization/add/").content.decode()

    assert "&lt;slug&gt;.&lt;base domain&gt;" in page


@pytest.mark.django_db
def test_neither_admin_links_to_a_site_that_is_not_there(staff_client, alpha):
    tenant = Client(HTTP_HOST=alpha.host)
    tenant.post("/admin/login/", {"username": alpha.admin_email, "password": PASSWORD})

    for client in (staff_client, tenant):
        page = client.get("/admin/").content.decode()
        assert "View site" not in page, page[:3000]
