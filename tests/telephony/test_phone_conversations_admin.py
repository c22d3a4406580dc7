"""Phone conversations in the tenant admin: filtered by channel, with the caller's number and call SID."""

from __future__ import annotations

import uuid

import pytest
from django_tenants.utils import tenant_context

from conversations.actions import do_start_conversation
from tenants.models import Organization
from tests.telephony.conftest import CALLER
from tests.telephony.test_phone_number_admin import admin_of
from voice.models import Assistant

CONVERSATIONS = "/admin/conversations/conversation/"


def start(tenant, channel: str, **phone: str) -> str:
    with tenant_context(tenant.organization):
        assistant = Assistant.objects.get(is_default=True)
        return str(
            do_start_conversation(
                conversation_id=uuid.uuid4(),
                assistant_id=assistant.pk,
                visitor_id=f"{channel}-visitor",
                channel=channel,
                origin="",
                **phone,
            ).pk
        )


@pytest.mark.django_db
def test_the_admin_filters_phone_conversations_and_shows_the_caller(alpha):
    phone = start(alpha, "phone", caller_number=CALLER, call_sid="CA" + "5" * 32)
    widget = start(alpha, "voice")
    client = admin_of(alpha)

    listing = client.get(CONVERSATIONS, {"channel__exact": "phone"}).content.decode()
    page = client.get(f"{CONVERSATIONS}{phone}/change/").content.decode()

    assert phone in listing and widget not in listing
    assert CALLER in page and "CA" + "5" * 32 in page
    assert phone in client.get(CONVERSATIONS, {"q": "CA" + "5" * 32}).content.decode()


@pytest.mark.django_db
def test_a_redacting_organization_never_stores_the_callers_number(alpha):
    Organization.objects.filter(pk=alpha.organization.pk).update(redact_personal_data=True)
    alpha.organization.refresh_from_db()

    phone = start(alpha, "phone", caller_number=CALLER, call_sid="CA" + "6" * 32)

    page = admin_of(alpha).get(f"{CONVERSATIONS}{phone}/change/").content.decode()
    assert CALLER not in page and "[phone]" in page
