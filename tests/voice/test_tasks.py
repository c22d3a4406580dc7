"""The summary worker for sessions that last one request (REST API text conversations)."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import UsageEvent
from conversations.actions import TurnRecord, do_record_turn, do_start_conversation
from conversations.models import Conversation
from voice.models import Assistant
from voice.tasks import summarize_conversation

pytestmark = pytest.mark.django_db


def test_the_worker_summarises_what_slid_out_of_the_window_and_bills_it(alpha):
    now = timezone.now()
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get(is_default=True)
        conversation = do_start_conversation(
            conversation_id=uuid.uuid4(), assistant_id=assistant.pk, visitor_id="v", channel="api", origin=""
        )
        for index in range(assistant.recent_turns + 3):  # three messages beyond the window: not enough yet
            role = "visitor" if index % 2 == 0 else "assistant"
            text = f"message {index}"
            do_record_turn(
                conversation_id=conversation.pk,
                record=TurnRecord(role=role, text=text, heard_text=text, started_at=now, ended_at=now),
            )
        assert summarize_conversation.apply(args=[str(conversation.pk)]).get() == 0
        text = "message last"
        do_record_turn(
            conversation_id=conversation.pk,
            record=TurnRecord(role="visitor", text=text, started_at=now, ended_at=now),
        )
        covered = summarize_conversation.apply(args=[str(conversation.pk)]).get()
        again = summarize_conversation.apply(args=[str(conversation.pk)]).get()  # nothing new: no new summary
        stored = Conversation.objects.get(pk=conversation.pk)

    assert covered == 4 and again == 0
    assert stored.summary_through == 4
    assert stored.summary == "The visitor said: message 0 / message 2."
    assert UsageEvent.objects.filter(
        conversation_id=conversation.pk, idempotency_key__startswith="model:summary:"
    ).exists()
