"""insert_rows stores what Model.save() and bulk_create store, from a statement built once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django_tenants.utils import tenant_context

from billing.models import ProviderPrice, UsageEvent
from conversations.actions import do_start_conversation
from conversations.models import Turn
from core.inserts import insert_rows
from voice.models import Assistant

AT = datetime(2026, 12, 2, 9, 30, 15, 250000, tzinfo=UTC)


def _turn(conversation_id: uuid.UUID, index: int) -> Turn:
    return Turn(
        conversation_id=conversation_id,
        index=index,
        role="assistant",
        text="We open at ten. Shall I book?",
        heard_text="We open at ten.",
        interrupted=True,
        started_at=AT,
        ended_at=AT,
        llm_first_token_ms=301.5,
        audio_ms=2400.0,
        input_tokens=420,
        provider="openai",
        model="gpt-4o-mini",
        route={"llm": {"chosen": "openai:gpt-4o-mini", "attempts": [{"outcome": "ok"}]}},
    )  # output_tokens, tts_characters, played_ms, input_mode and audio keep their defaults


def test_a_turn_reads_back_as_the_one_save_stored(alpha):
    with tenant_context(alpha.organization):
        conversation = do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=Assistant.objects.get(is_default=True).pk,
            visitor_id="v",
            channel="voice",
            origin="",
        )
        saved, inserted = _turn(conversation.pk, 0), _turn(conversation.pk, 1)
        saved.save()
        insert_rows([inserted])
        assert inserted.pk is not None and inserted.pk != saved.pk and not inserted._state.adding
        fields = [f.name for f in Turn._meta.concrete_fields if f.name not in ("id", "index")]
        stored = Turn.objects.in_bulk([saved.pk, inserted.pk])
        as_saved, as_inserted = (model_to_dict(stored[pk], fields=fields) for pk in (saved.pk, inserted.pk))
        assert as_inserted == as_saved
        assert as_inserted["route"]["llm"]["attempts"] == [{"outcome": "ok"}]


def _usage(key: str, quantity: str) -> UsageEvent:
    return UsageEvent(
        organization_id=1,
        metric="llm_input_tokens",
        quantity=Decimal(quantity),
        provider="openai",
        model="gpt-4o-mini",
        occurred_at=AT,
        cost=Decimal("0.00006300"),
        idempotency_key=key,
    )


def test_rows_that_conflict_are_skipped_as_bulk_create_skips_them(alpha):
    organization_id = alpha.organization.pk
    first = [_usage("turn:x:1:in", "420"), _usage("turn:x:1:out", "16")]
    for event in first:
        event.organization_id = organization_id
    insert_rows(first, ignore_conflicts=True)
    again = [_usage("turn:x:1:in", "999"), _usage("turn:x:2:in", "7")]
    for event in again:
        event.organization_id = organization_id
    insert_rows(again, ignore_conflicts=True)
    stored = dict(UsageEvent.objects.filter(organization_id=organization_id).values_list("idempotency_key", "quantity"))
    assert stored == {"turn:x:1:in": Decimal("420"), "turn:x:1:out": Decimal("16"), "turn:x:2:in": Decimal("7")}
    assert all(event.recorded_at is not None for event in first)  # the field's default, as Django sets it


def test_a_model_with_its_own_save_is_refused():
    with pytest.raises(TypeError, match="own save"):
        insert_rows([ProviderPrice(provider="openai", model="*", metric="stt_seconds", price=1, effective_from=AT)])
