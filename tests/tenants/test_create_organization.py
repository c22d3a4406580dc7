"""Opening an organization: everything it needs, or nothing at all."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from aura.workflows.organizations import open_organization
from tenants.actions import NewOrganization
from tenants.models import Domain, Organization
from voice.models import Assistant

PASSWORD = "a-long-enough-password-7"


def _new(slug: str = "gamma", **overrides: str) -> NewOrganization:
    values = {"name": "Gamma Inc", "slug": slug, "admin_email": "boss@gamma.example", "admin_password": PASSWORD}
    values.update(overrides)
    return NewOrganization(**values)


def _counts() -> tuple[int, int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 't\\_%%'")
        schemas = cursor.fetchone()[0]
    return Organization.objects.count(), Domain.objects.count(), schemas


@pytest.mark.django_db
def test_creation_gives_schema_domain_admin_and_default_assistant():
    organization = open_organization(_new())

    assert organization.is_ready
    assert organization.schema_name == "t_gamma"
    assert schema_exists("t_gamma")
    assert Domain.objects.get(tenant=organization).domain == "gamma.localhost"
    with tenant_context(organization):
        admin = get_user_model().objects.get(username="boss@gamma.example")
        assert admin.is_superuser
        assert admin.is_staff
        assert admin.check_password(PASSWORD)
        assert list(Assistant.objects.values_list("name", "is_default")) == [("Gamma Inc assistant", True)]


@pytest.mark.django_db
@pytest.mark.usefixtures("alpha")
@pytest.mark.parametrize(
    ("new", "field"),
    [
        (_new(slug="alpha"), "slug"),  # duplicate slug (and domain)
        (_new(slug="Bad_Slug"), "slug"),
        (_new(slug="ab"), "slug"),
        (_new(slug="public"), "slug"),
        (_new(slug="ends-"), "slug"),
        (_new(admin_email=""), "admin_email"),
        (_new(admin_email="not-an-address"), "admin_email"),
        (_new(admin_password="123"), "admin_password"),
        (_new(name=""), "name"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_created(new, field):
    before = _counts()

    with pytest.raises(ValidationError) as excinfo:
        open_organization(new)

    assert field in excinfo.value.message_dict
    assert _counts() == before


@pytest.mark.django_db
def test_a_failure_midway_leaves_neither_schema_nor_row(monkeypatch):
    before = _counts()

    def explode(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("aura.workflows.organizations.do_create_default_assistant", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        open_organization(_new(slug="delta"))

    assert _counts() == before
    assert not schema_exists("t_delta")


@pytest.mark.django_db
def test_a_taken_custom_domain_blocks_the_slug():
    Domain.objects.create(domain="epsilon.localhost", tenant=Organization.objects.get(slug="alpha"), is_primary=False)

    with pytest.raises(ValidationError) as excinfo:
        open_organization(_new(slug="epsilon"))

    assert "already taken" in " ".join(excinfo.value.message_dict["slug"])


@pytest.mark.django_db
def test_command_creates_and_reports(capsys):
    call_command("create_organization", name="Zeta", slug="zeta", admin_email="z@zeta.example", admin_password=PASSWORD)

    out = capsys.readouterr().out
    assert "Created Zeta (schema t_zeta)" in out
    assert "http://zeta.localhost:8000/admin/" in out
    assert Organization.objects.get(slug="zeta").is_ready


@pytest.mark.django_db
def test_command_explains_every_problem_at_once():
    with pytest.raises(CommandError) as excinfo:
        call_command("create_organization", name="Eta", slug="Eta!", admin_email="", admin_password="x")

    message = str(excinfo.value)
    assert "slug:" in message
    assert "admin_email:" in message
    assert "admin_password:" in message
    assert not Organization.objects.filter(name="Eta").exists()
