"""Forgetting a visitor everywhere (aura.workflows.visitors): every door — the assistant's tool, the API's
visitor-profile delete, the tenant admin's delete — forgets the profile, the recordings and the phone
calls' details in one go."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django_tenants.utils import tenant_context

from aura.workflows.visitors import forget_visitor
from conversations.actions import do_start_conversation
from conversations.models import Conversation, Turn, VisitorProfile
from conversations.visitors import forget_visitor_everywhere
from telephony.models import Call
from tests.api.conftest import alpha_api, make_key  # noqa: F401 - fixtures used by name
from tests.telephony.conftest import ALPHA_NUMBER, alpha_number  # noqa: F401 - fixture
from tests.telephony.test_call_privacy import call_of
from voice.models import Assistant

pytestmark = pytest.mark.django_db(transaction=True)


def _recorded_conversation(alpha, visitor: str) -> tuple[Conversation, str]:
    with tenant_context(alpha.organization):
        conversation = do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=Assistant.objects.get(is_default=True).pk,
            visitor_id=visitor,
            channel="phone",
            origin=ALPHA_NUMBER,
        )
        turn = Turn.objects.create(
            conversation=conversation, index=0, role="visitor", text="my name is Zebulon", started_at=timezone.now()
        )
        turn.audio.save("speech.wav", ContentFile(b"RIFF....WAVE"), save=True)
        VisitorProfile.objects.create(visitor_id=visitor, name="Zebulon")
        return conversation, turn.audio.name


def test_forgetting_deletes_profile_recordings_and_call_details_together(alpha, alpha_number):  # noqa: F811
    visitor = f"crm-{uuid.uuid4().hex[:8]}"
    conversation, recording = _recorded_conversation(alpha, visitor)
    call = call_of(alpha_number, "CA-forget", conversation_id=conversation.pk)
    assert default_storage.exists(recording)

    with tenant_context(alpha.organization):
        forgotten = forget_visitor(visitor_id=visitor, conversation_id=conversation.pk)
        assert (forgotten.profiles, forgotten.recordings) == (1, 1)
        assert not VisitorProfile.objects.filter(visitor_id=visitor).exists()
        assert Turn.objects.get(conversation=conversation).audio.name == ""
        assert Conversation.objects.get(pk=conversation.pk).visitor_forgotten
    call.refresh_from_db()
    assert (call.from_number, call.first_message, call.metadata) == ("", "", {})
    assert not default_storage.exists(recording)  # the file went once the transaction committed


def test_the_doors_below_the_root_reach_the_whole_workflow(alpha, alpha_number, alpha_api):  # noqa: F811
    """The tool and the admin call conversations.visitors.forget_visitor_everywhere; the API deletes a profile."""
    visitor = f"crm-{uuid.uuid4().hex[:8]}"
    conversation, recording = _recorded_conversation(alpha, visitor)
    call = call_of(alpha_number, "CA-api", conversation_id=conversation.pk)
    with tenant_context(alpha.organization):
        profile = VisitorProfile.objects.get(visitor_id=visitor)

    answer = alpha_api.delete(f"/api/v1/visitors/{profile.pk}/")

    assert answer.status_code == 204, answer.content
    call.refresh_from_db()
    assert call.from_number == "" and not default_storage.exists(recording)
    with tenant_context(alpha.organization):
        forget_visitor_everywhere(visitor_id=visitor)  # again: nothing left, nothing fails
        assert Call.objects.filter(pk=call.pk, metadata={}).exists()
