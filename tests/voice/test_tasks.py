"""The summary worker for sessions that last one request (REST API text conversations)."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import UsageEvent
from conversations.actions import TurnRecord, do_record_turn, do_start_conversation
from conversations.models import Conversation, Turn
from voice.models import Assistant
from voice.tasks import summarize_conversation, understand_turn

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


def test_the_worker_labels_an_unsure_turn_with_the_chat_model_once_and_bills_it(alpha):
    now = timezone.now()
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get(is_default=True)
        Assistant.objects.filter(pk=assistant.pk).update(
            intents=[{"name": "book_table", "examples": ["book a table", "a reservation for tonight"]}]
        )
        conversation = do_start_conversation(
            conversation_id=uuid.uuid4(), assistant_id=assistant.pk, visitor_id="v", channel="api", origin=""
        )
        turn_id = do_record_turn(
            conversation_id=conversation.pk,
            record=TurnRecord(
                role="visitor",
                text="could I get a reservation for tonight, I'm lost",
                started_at=now,
                ended_at=now,
                emotion="neutral",
                understood_by="rules",
            ),
        )
        first = understand_turn.apply(args=[turn_id]).get()
        again = understand_turn.apply(args=[turn_id]).get()  # labelled by the model already: nothing to do
        stored = Turn.objects.get(pk=turn_id)

    assert (first, again) == ("confused", "")
    assert (stored.emotion, stored.intent, stored.understood_by) == ("confused", "book_table", "model")
    assert UsageEvent.objects.filter(idempotency_key__startswith=f"model:understanding:{turn_id}:").count() == 2
