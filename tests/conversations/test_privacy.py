"""Redaction of personal data before storage, retention, and what is stored of audio."""

from __future__ import annotations

import uuid
import wave
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from conversations.actions import TurnRecord, do_apply_retention, do_record_turn, do_start_conversation
from conversations.models import Conversation, Lead, ToolCall, Turn
from conversations.privacy import redact
from voice.models import Assistant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My card is 4111 1111 1111 1111.", "My card is [card]."),
        ("card 4111-1111-1111-1111 please", "card [card] please"),
        ("write to anna.b+shop@example.co.uk today", "write to [email] today"),
        ("call +44 20 7946 0958", "call [phone]"),
        ("my number is 06 12 34 56 78", "my number is [phone]"),
        ("SSN 123-45-6789", "SSN [national id]"),
        ("NI number AB 12 34 56 C", "NI number [national id]"),
        ("DNI 12345678Z", "DNI [national id]"),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [iban]"),
    ],
)
def test_personal_data_is_replaced(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    ["A table for 4 at 19:30 on 2026-12-05.", "Order 12345 costs 23.50 euros.", "We open at 9 and close at 22."],
)
def test_ordinary_numbers_stay(text):
    assert redact(text) == text


def _conversation(assistant_id: int, started_days_ago: int = 0) -> Conversation:
    conversation = do_start_conversation(
        conversation_id=uuid.uuid4(), assistant_id=assistant_id, visitor_id="v", channel="text", origin=""
    )
    if started_days_ago:
        Conversation.objects.filter(pk=conversation.pk).update(
            started_at=timezone.now() - timedelta(days=started_days_ago)
        )
    return conversation


def _record(text: str, **extra) -> TurnRecord:
    now = timezone.now()
    return TurnRecord(role="visitor", text=text, started_at=now, ended_at=now, **extra)


def test_turns_and_tool_calls_are_redacted_when_the_organization_asks(alpha):
    organization = alpha.organization
    with tenant_context(organization):
        assistant = Assistant.objects.get(is_default=True)
        conversation = _conversation(assistant.pk)
        organization.redact_personal_data = False
        kept = do_record_turn(conversation_id=conversation.pk, record=_record("mail me at a@example.com"))
        organization.redact_personal_data = True
        tool_call = {"name": "capture_lead", "arguments": {"email": "a@example.com"}, "result": "saved a@example.com"}
        redacted = do_record_turn(
            conversation_id=conversation.pk,
            record=_record("mail me at a@example.com", heard_text="card 4111 1111 1111 1111", tool_calls=(tool_call,)),
        )
        organization.redact_personal_data = False
        assert Turn.objects.get(pk=kept).text == "mail me at a@example.com"
        turn = Turn.objects.get(pk=redacted)
        assert (turn.text, turn.heard_text) == ("mail me at [email]", "card [card]")
        call = ToolCall.objects.get(turn=turn)
        assert call.arguments == {"email": "[email]"} and call.result == "saved [email]"


def test_audio_is_stored_only_when_the_organization_records(alpha, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    organization = alpha.organization
    with tenant_context(organization):
        assistant = Assistant.objects.get(is_default=True)
        conversation = _conversation(assistant.pk)
        speech = b"\x01\x00" * 16000
        silent_turn = do_record_turn(conversation_id=conversation.pk, record=_record("hi", audio_pcm=speech))
        organization.record_audio = True
        try:
            recorded = do_record_turn(conversation_id=conversation.pk, record=_record("hi", audio_pcm=speech))
        finally:
            organization.record_audio = False
        assert not Turn.objects.get(pk=silent_turn).audio
        audio = Turn.objects.get(pk=recorded).audio
        assert audio.name.startswith(f"recordings/{organization.schema_name}/")
        assert audio.size == 44 + len(speech)  # a WAV header and the speech
    assert list(tmp_path.rglob("*.wav")) == [tmp_path / audio.name]


def test_a_phone_callers_audio_is_stored_at_its_own_8_khz(alpha, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    organization = alpha.organization
    with tenant_context(organization):
        conversation = _conversation(Assistant.objects.get(is_default=True).pk)
        second = b"\x01\x00" * 8000
        organization.record_audio = True
        try:
            recorded = do_record_turn(
                conversation_id=conversation.pk, record=_record("hi", audio_pcm=second, audio_rate=8000)
            )
        finally:
            organization.record_audio = False
        with Turn.objects.get(pk=recorded).audio.open("rb") as stored, wave.open(stored) as wav:
            assert (wav.getframerate(), wav.getnframes()) == (8000, 8000)  # one second, not half of one


def test_retention_deletes_old_conversations_and_keeps_leads(alpha, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    organization = alpha.organization
    with tenant_context(organization):
        assistant = Assistant.objects.get(is_default=True)
        old = _conversation(assistant.pk, started_days_ago=40)
        recent = _conversation(assistant.pk, started_days_ago=5)
        do_record_turn(conversation_id=old.pk, record=_record("old words"))
        lead = Lead.objects.create(conversation=old, name="Anna", email="anna@example.com")
        organization.retention_days = None
        assert do_apply_retention() == 0
        organization.retention_days = 30
        try:
            assert do_apply_retention() == 1
        finally:
            organization.retention_days = None
        assert not Conversation.objects.filter(pk=old.pk).exists()
        assert Conversation.objects.filter(pk=recent.pk).exists()
        assert not Turn.objects.filter(conversation_id=old.pk).exists()
        assert Lead.objects.get(pk=lead.pk).conversation_id is None


def test_the_retention_job_visits_every_organization_with_a_period(alpha, beta):
    from aura.tasks import apply_retention
    from tenants.models import Organization

    Organization.objects.filter(pk=alpha.organization.pk).update(retention_days=1)
    try:
        with tenant_context(alpha.organization):
            old = _conversation(Assistant.objects.get(is_default=True).pk, started_days_ago=3)
        result = apply_retention.apply().get()
    finally:
        Organization.objects.filter(pk=alpha.organization.pk).update(retention_days=None)
    assert result[alpha.organization.slug] >= 1 and beta.organization.slug not in result
    with tenant_context(alpha.organization):
        assert not Conversation.objects.filter(pk=old.pk).exists()


def test_a_visitor_forgotten_in_a_conversation_is_not_learnt_from_it_later(alpha):
    from conversations.actions import do_forget_visitor, do_remember_visitor
    from conversations.models import VisitorProfile

    with tenant_context(alpha.organization):
        conversation = _conversation(Assistant.objects.get(is_default=True).pk)
        visitor = f"visitor-{uuid.uuid4()}"
        VisitorProfile.objects.create(visitor_id=visitor, name="Anna")
        do_forget_visitor(visitor_id=visitor, conversation_id=conversation.pk)
        # The conversation ends later, on another connection or through the API: its profile step runs again.
        do_remember_visitor(
            visitor_id=visitor, conversation_id=conversation.pk, name="Anna", preferences=[], open_requests=[]
        )
        assert not VisitorProfile.objects.filter(visitor_id=visitor).exists()
        assert Conversation.objects.get(pk=conversation.pk).visitor_forgotten


def test_a_resumed_conversation_continues_after_its_summary(alpha):
    from conversations.actions import do_record_summary
    from conversations.queries import conversation_history

    with tenant_context(alpha.organization):
        conversation = _conversation(Assistant.objects.get(is_default=True).pk)
        for index in range(6):
            role = "visitor" if index % 2 == 0 else "assistant"
            text = f"message {index}"
            do_record_turn(
                conversation_id=conversation.pk,
                record=_record(text, heard_text=text) if role == "assistant" else _record(text),
            )
        Turn.objects.filter(conversation=conversation, index__in=[1, 3, 5]).update(role="assistant")
        do_record_summary(conversation_id=conversation.pk, summary="The first four.", through_index=4)
        history = conversation_history(str(conversation.pk))
    assert (history.summary, history.first) == ("The first four.", 4)
    assert history.messages == [("user", "message 4"), ("assistant", "message 5")]
