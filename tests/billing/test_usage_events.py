"""Usage events are written with the turn they describe: same transaction, once, priced at their moment."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

import conversations.actions as conversation_actions
from billing.actions import do_record_turn_usage, do_reprice_usage
from billing.models import DailyUsage, ProviderPrice, UsageEvent
from conversations.actions import TurnRecord, do_record_turn, do_resume_conversation, do_start_conversation
from conversations.models import Conversation, Turn
from voice.models import Assistant

MAY_31 = datetime(2026, 5, 31, 12, tzinfo=UTC)
JUNE_2 = datetime(2026, 6, 2, 12, tzinfo=UTC)


def _start(tenant, channel: str = "voice") -> Conversation:
    return do_start_conversation(
        conversation_id=uuid.uuid4(),
        assistant_id=Assistant.objects.get().pk,
        visitor_id="visitor-1",
        channel=channel,
        origin="https://shop.example",
    )


def _visitor_turn(at: datetime = MAY_31, audio_ms: float = 1500.0) -> TurnRecord:
    return TurnRecord(
        role="visitor",
        text="When are you open?",
        input_mode="voice",
        started_at=at,
        ended_at=at,
        audio_ms=audio_ms,
        stt_ms=180.0,
        provider="openai",
        model="gpt-4o-mini-transcribe",
    )


def _assistant_turn(at: datetime = MAY_31, **fields: object) -> TurnRecord:
    values = {
        "role": "assistant",
        "text": "We are open every day from nine.",
        "started_at": at,
        "ended_at": at,
        "audio_ms": 4200.0,
        "input_tokens": 120,
        "output_tokens": 30,
        "tts_characters": 80,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "route": {"llm": {"chosen": "openai:gpt-4o-mini"}, "tts": {"chosen": "openai:gpt-4o-mini-tts"}},
    }
    values.update(fields)
    return TurnRecord(**values)


def _events(conversation_id) -> dict[str, tuple]:
    return {
        event.metric: (event.quantity, event.provider, event.model, event.cost)
        for event in UsageEvent.objects.filter(conversation_id=conversation_id)
    }


@pytest.mark.django_db
def test_a_conversation_and_its_turns_write_priced_usage_events(alpha):
    with tenant_context(alpha.organization):
        conversation = _start(alpha)
        do_record_turn(conversation_id=conversation.id, record=_visitor_turn())
        do_record_turn(conversation_id=conversation.id, record=_assistant_turn())

    events = _events(conversation.id)
    assert events == {
        "session": (Decimal("1.000"), "", "", Decimal("0E-8")),
        "audio_in_seconds": (Decimal("1.500"), "openai", "gpt-4o-mini-transcribe", Decimal("0E-8")),
        # 1.5 s at $0.003 a minute; 120 and 30 tokens at $0.15 and $0.60 per million; 80 characters at $15 per million
        "stt_seconds": (Decimal("1.500"), "openai", "gpt-4o-mini-transcribe", Decimal("0.00007500")),
        "llm_input_tokens": (Decimal("120.000"), "openai", "gpt-4o-mini", Decimal("0.00001800")),
        "llm_output_tokens": (Decimal("30.000"), "openai", "gpt-4o-mini", Decimal("0.00001800")),
        "tts_characters": (Decimal("80.000"), "openai", "gpt-4o-mini-tts", Decimal("0.00120000")),
        "audio_out_seconds": (Decimal("4.200"), "openai", "gpt-4o-mini-tts", Decimal("0E-8")),
    }
    keys = set(UsageEvent.objects.filter(conversation_id=conversation.id).values_list("idempotency_key", flat=True))
    assert f"session:{conversation.id}" in keys
    assert f"turn:{conversation.id}:1:llm_input_tokens" in keys
    stored = UsageEvent.objects.filter(conversation_id=conversation.id)
    assert {(e.organization_id, e.channel) for e in stored} == {(alpha.organization.pk, "voice")}


@pytest.mark.django_db
def test_speech_to_text_is_billed_for_all_the_audio_sent_not_the_speech_alone(alpha):
    """Review 16, finding 4: semantic end of turn sends the utterance so far at each pause; every request
    is billed by the provider, so the turn's speech-to-text seconds are the audio sent (route.stt_audio_ms)."""
    with tenant_context(alpha.organization):
        conversation = _start(alpha)
        record = _visitor_turn()
        do_record_turn(conversation_id=conversation.id, record=replace(record, route={"stt_audio_ms": 4200}))

    events = _events(conversation.id)
    assert events["audio_in_seconds"][0] == Decimal("1.500")  # the visitor's speech
    assert events["stt_seconds"][:3] == (Decimal("4.200"), "openai", "gpt-4o-mini-transcribe")


@pytest.mark.django_db
def test_the_same_turn_recorded_twice_counts_once(alpha):
    with tenant_context(alpha.organization):
        conversation = _start(alpha)
        do_record_turn(conversation_id=conversation.id, record=_assistant_turn())
        turn = Turn.objects.get(conversation=conversation)
        do_record_turn_usage(conversation=conversation, turn=turn)  # a retried write, or a re-run backfill
        do_record_turn_usage(conversation=conversation, turn=turn)
        do_resume_conversation(conversation_id=conversation.id, connection="another")  # no second session

    assert UsageEvent.objects.filter(conversation_id=conversation.id).count() == 5  # session + 4 of the turn


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_the_turn_insert_rolls_back_both(alpha, monkeypatch):
    """Committed for real: the public-schema events ride in the tenant schema's transaction."""
    with tenant_context(alpha.organization):
        conversation = _start(alpha)
    real = conversation_actions.do_record_turn_usage

    def write_then_crash(**kwargs):
        real(**kwargs)
        assert UsageEvent.objects.filter(conversation_id=conversation.id).count() == 5  # written, not committed
        raise RuntimeError("the process died here")

    monkeypatch.setattr(conversation_actions, "do_record_turn_usage", write_then_crash)
    with tenant_context(alpha.organization), pytest.raises(RuntimeError):
        do_record_turn(conversation_id=conversation.id, record=_assistant_turn())

    with tenant_context(alpha.organization):
        assert not Turn.objects.filter(conversation_id=conversation.id).exists()
    assert list(UsageEvent.objects.filter(conversation_id=conversation.id).values_list("metric", flat=True)) == [
        "session"
    ]


@pytest.mark.django_db
def test_each_event_is_priced_as_of_when_it_happened(alpha):
    ProviderPrice.objects.create(
        provider="openai",
        model="gpt-4o-mini",
        metric="llm_input_tokens",
        price=Decimal("0.30"),
        per_quantity=1_000_000,
        effective_from=datetime(2026, 6, 1, tzinfo=UTC),
    )
    with tenant_context(alpha.organization):
        before, after = _start(alpha), _start(alpha)
        do_record_turn(conversation_id=before.id, record=_assistant_turn(MAY_31, input_tokens=1_000_000))
        do_record_turn(conversation_id=after.id, record=_assistant_turn(JUNE_2, input_tokens=1_000_000))

    assert _events(before.id)["llm_input_tokens"][3] == Decimal("0.15000000")
    assert _events(after.id)["llm_input_tokens"][3] == Decimal("0.30000000")


@pytest.mark.django_db
def test_an_unknown_model_is_unpriced_until_staff_add_its_price(alpha):
    with tenant_context(alpha.organization):
        conversation = _start(alpha, channel="text")
        do_record_turn(
            conversation_id=conversation.id,
            record=_assistant_turn(provider="openai_compatible", model="llama-3-70b", tts_characters=0, audio_ms=0),
        )
    assert _events(conversation.id)["llm_output_tokens"][3] is None

    ProviderPrice.objects.create(
        provider="openai_compatible",
        model="*",
        metric="llm_output_tokens",
        price=Decimal("1"),
        per_quantity=1000,
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    repriced = do_reprice_usage(
        provider="openai_compatible", model="*", metric="llm_output_tokens", since=datetime(2026, 1, 1, tzinfo=UTC)
    )

    assert repriced == 1
    assert _events(conversation.id)["llm_output_tokens"][3] == Decimal("0.03000000")  # 30 tokens at $1 per 1,000
    rolled = DailyUsage.objects.get(organization=alpha.organization, day=MAY_31.date(), metric="llm_output_tokens")
    assert (rolled.cost, rolled.unpriced_events, rolled.channel) == (Decimal("0.03000000"), 0, "text")


@pytest.mark.django_db
def test_usage_outside_a_tenant_schema_is_refused():
    conversation = Conversation(id=uuid.uuid4(), assistant_id=1, channel="voice")
    with pytest.raises(RuntimeError, match="inside the tenant"):
        do_record_turn_usage(conversation=conversation, turn=Turn(index=0, role="visitor", started_at=MAY_31))


@pytest.mark.django_db
def test_tool_rounds_answered_by_two_models_bill_each_its_tokens(alpha):
    rounds = [
        {"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 100, "output_tokens": 12},  # called a tool
        {"provider": "openai", "model": "gpt-4o", "input_tokens": 150, "output_tokens": 30},  # smart: strong model
    ]
    route = {"llm": {"chosen": "openai:gpt-4o"}, "tts": {"chosen": "openai:gpt-4o-mini-tts"}, "llm_rounds": rounds}
    with tenant_context(alpha.organization):
        conversation = _start(alpha)
        record = _assistant_turn(input_tokens=250, output_tokens=42, model="gpt-4o", route=route)
        do_record_turn(conversation_id=conversation.id, record=record)
        do_record_turn_usage(conversation=conversation, turn=Turn.objects.get(conversation=conversation))  # again

    tokens = sorted(
        UsageEvent.objects.filter(conversation_id=conversation.id, metric__startswith="llm_").values_list(
            "metric", "model", "quantity"
        )
    )
    assert tokens == [
        ("llm_input_tokens", "gpt-4o", Decimal("150.000")),
        ("llm_input_tokens", "gpt-4o-mini", Decimal("100.000")),
        ("llm_output_tokens", "gpt-4o", Decimal("30.000")),
        ("llm_output_tokens", "gpt-4o-mini", Decimal("12.000")),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(("seconds", "minutes"), [(1, 1), (60, 1), (61, 2), (119, 2)])
def test_a_phone_calls_cost_is_of_whole_minutes_rounded_up_per_call(alpha, seconds, minutes):
    """Review finding 11: the carrier bills each call by the started minute; the quantity stays the seconds."""
    from billing.actions import do_record_call_usage

    do_record_call_usage(
        organization_id=alpha.organization.pk,
        call_sid=f"CA-{seconds}",
        outbound=False,
        seconds=seconds,
        occurred_at=datetime.now(UTC),
    )

    (event,) = UsageEvent.objects.filter(
        metric="phone_in_seconds", idempotency_key=f"call:CA-{seconds}:phone_in_seconds"
    )
    assert event.quantity == seconds
    assert event.cost == Decimal("0.0125") * minutes  # the catalog's inbound price per minute
