"""Which conversations can continue on a new connection, and who may end them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from conversations.actions import (
    TurnRecord,
    do_end_conversation,
    do_record_turn,
    do_resume_conversation,
    do_start_conversation,
)
from conversations.models import Conversation, Turn
from conversations.queries import resumable_conversation
from voice.models import Assistant


@pytest.fixture
def conversation(alpha):
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get()
        started = do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=assistant.pk,
            visitor_id="v1",
            channel="voice",
            origin="https://shop.example",
            connection="first",
        )
        yield started, assistant


def _turn(conversation_id, at):
    do_record_turn(
        conversation_id=conversation_id, record=TurnRecord(role="visitor", text="hi", started_at=at, ended_at=at)
    )


@pytest.mark.django_db
def test_the_old_connections_late_disconnect_does_not_end_a_resumed_conversation(conversation):
    started, _ = conversation
    do_resume_conversation(conversation_id=started.pk, connection="second")

    do_end_conversation(conversation_id=started.pk, reason="disconnected", connection="first")
    assert Conversation.objects.get(pk=started.pk).status == "active"

    do_end_conversation(conversation_id=started.pk, reason="visitor_ended", connection="second")
    assert Conversation.objects.get(pk=started.pk).end_reason == "visitor_ended"


@pytest.mark.django_db
def test_only_the_same_visitor_and_assistant_may_resume_recently(conversation):
    started, assistant = conversation
    _turn(started.pk, timezone.now())

    assert resumable_conversation(str(started.pk), assistant_id=assistant.pk, visitor_id="v1") == started
    assert resumable_conversation(str(started.pk), assistant_id=assistant.pk, visitor_id="v2") is None
    assert resumable_conversation(str(started.pk), assistant_id=assistant.pk + 1, visitor_id="v1") is None
    assert resumable_conversation("not-a-uuid", assistant_id=assistant.pk, visitor_id="v1") is None


@pytest.mark.django_db
def test_a_conversation_left_active_by_a_crash_expires(conversation):
    started, assistant = conversation
    _turn(started.pk, timezone.now() - timedelta(minutes=20))
    Conversation.objects.filter(pk=started.pk).update(started_at=timezone.now() - timedelta(minutes=25))

    assert Turn.objects.filter(conversation=started).count() == 1
    assert resumable_conversation(str(started.pk), assistant_id=assistant.pk, visitor_id="v1") is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("reason", "resumable"), [("disconnected", True), ("visitor_ended", False), ("idle_timeout", False)]
)
def test_how_it_ended_decides(conversation, reason, resumable):
    started, assistant = conversation
    _turn(started.pk, timezone.now())
    do_end_conversation(conversation_id=started.pk, reason=reason, connection="first")

    found = resumable_conversation(str(started.pk), assistant_id=assistant.pk, visitor_id="v1")
    assert (found is not None) is resumable


@pytest.mark.django_db
@pytest.mark.parametrize(("channel", "resumable"), [("voice", True), ("text", True), ("api", False), ("phone", False)])
def test_only_a_widget_conversation_resumes_in_a_widget(alpha, channel, resumable):
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get()
        started = do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=assistant.pk,
            visitor_id="crm-4711",
            channel=channel,
            origin="api",
            connection="first",
        )
        found = resumable_conversation(str(started.pk), assistant_id=assistant.pk, visitor_id="crm-4711")
    assert (found is not None) is resumable
