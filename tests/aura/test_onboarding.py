"""The onboarding checklist on a new organization's admin home ticks itself from the organization's state."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from aura.workflows.organizations import open_organization
from conversations.models import Conversation
from knowledge.models import Document
from tenants.actions import NewOrganization
from tenants.models import WidgetKey
from voice.models import Assistant, BuiltinTool

PASSWORD = "a-long-enough-password-7"
pytestmark = pytest.mark.django_db


def _done(page: str) -> dict[str, bool]:
    return {key: done == "true" for key, done in re.findall(r'id="onboarding-(\w+)" data-done="(\w+)"', page)}


def test_a_new_organization_is_guided_and_the_checklist_ticks_as_things_happen():
    organization = open_organization(
        NewOrganization(name="Kappa Co", slug="kappa", admin_email="boss@kappa.example", admin_password=PASSWORD)
    )
    with tenant_context(organization):
        assistant = Assistant.objects.get()
    # The default assistant starts with the business-hours and knowledge-search tools on.
    assert {BuiltinTool.BUSINESS_HOURS, BuiltinTool.SEARCH_KNOWLEDGE} <= set(assistant.tools)
    client = Client(HTTP_HOST="kappa.localhost")
    assert client.post("/admin/login/", {"username": "boss@kappa.example", "password": PASSWORD}).status_code == 302

    page = client.get("/admin/").content.decode()
    assert _done(page) == {
        "assistant": False,
        "widget": False,
        "conversation": False,
        "knowledge": False,
        "phone": False,
    }
    assert "0 of 4 done" in page
    key = WidgetKey.objects.get(organization=organization)
    assert "is ready and waiting for its site" in page  # the key exists; only the site is missing
    assert f'href="/admin/tenants/widgetkey/{key.pk}/change/"' in page
    assert 'class="button aura-copy"' in page and f"data-key=&quot;{key.key}&quot;" in page  # the snippet, copyable
    assert f'href="/admin/voice/assistant/{assistant.pk}/change/#try-it"' in page

    with tenant_context(organization):
        Assistant.objects.filter(pk=assistant.pk).update(instructions="You answer for Kappa Co, a bakery.")
        Document.objects.create(title="Menu", kind="pasted", text="Bread and cakes.")
        Conversation.objects.create(assistant_id=assistant.pk, visitor_id="v-1")
    key.allowed_origins = [*key.allowed_origins, "https://kappa-bakery.example"]
    key.save()

    page = client.get("/admin/").content.decode()
    assert _done(page) == {"assistant": True, "widget": True, "conversation": True, "knowledge": True, "phone": False}
    assert "4 of 4 done: your assistant is live." in page
    assert "is allowed on https://kappa-bakery.example" in page


def test_the_platform_home_has_no_checklist(django_user_model):
    django_user_model.objects.create_superuser("staffer", "staffer@aura.example", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    client.post("/admin/login/", {"username": "staffer", "password": PASSWORD})
    page = client.get("/admin/").content.decode()
    assert "aura-onboarding" not in page and "admin/aura.css" in page  # the same theme, no tenant checklist
