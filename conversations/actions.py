"""Writes to conversations and turns. Run inside the tenant's schema (through run_in_tenant from async code)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from billing.actions import do_record_session_usage, do_record_turn_usage
from conversations.events import emit_conversation_ended, emit_conversation_started
from conversations.models import Conversation, Role, Status, Turn


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """Everything stored about one turn; timings in milliseconds, None where a stage did not run."""

    role: str
    text: str
    started_at: datetime
    ended_at: datetime
    heard_text: str = ""
    interrupted: bool = False
    input_mode: str = ""
    endpoint_delay_ms: float | None = None
    stt_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_byte_ms: float | None = None
    first_audio_ms: float | None = None
    total_ms: float | None = None
    audio_ms: float | None = None
    played_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    tts_characters: int = 0
    provider: str = ""
    model: str = ""
    route: dict[str, object] = field(default_factory=dict)


@transaction.atomic
def do_start_conversation(
    *,
    conversation_id: uuid.UUID | str,
    assistant_id: int,
    visitor_id: str,
    channel: str,
    origin: str,
    connection: str = "",
) -> Conversation:
    conversation = Conversation.objects.create(
        id=conversation_id,
        assistant_id=assistant_id,
        visitor_id=visitor_id,
        channel=channel,
        origin=origin[:255],
        connection=connection,
    )
    do_record_session_usage(conversation=conversation)  # billing's event, in the same transaction
    emit_conversation_started(conversation)  # webhooks, sent once this transaction commits
    return conversation


def do_resume_conversation(*, conversation_id: uuid.UUID | str, connection: str) -> None:
    """A conversation cut by the network continues on a new connection, which now holds it."""
    Conversation.objects.filter(pk=conversation_id).update(
        status=Status.ACTIVE, end_reason="", ended_at=None, connection=connection
    )


@transaction.atomic
def do_record_turn(*, conversation_id: uuid.UUID | str, record: TurnRecord) -> int:
    """Append a turn and its usage events (billing, public schema, same transaction); returns its id.

    The conversation row is locked so indexes never collide.
    """
    locked = Conversation.objects.select_for_update().only("id", "assistant_id", "channel")
    conversation = locked.get(pk=conversation_id)
    last = Turn.objects.filter(conversation_id=conversation_id).aggregate(last=Max("index"))["last"]
    turn = Turn.objects.create(
        conversation_id=conversation_id, index=0 if last is None else last + 1, **_fields(record)
    )
    do_record_turn_usage(conversation=conversation, turn=turn)
    return turn.pk


def do_record_heard_text(*, turn_id: int, heard_text: str, played_ms: float, interrupted: bool) -> None:
    """What the visitor actually heard of an assistant turn, once the client reports its playback."""
    Turn.objects.filter(pk=turn_id, role=Role.ASSISTANT).update(
        heard_text=heard_text, played_ms=played_ms, interrupted=interrupted
    )


def do_end_conversation(*, conversation_id: uuid.UUID | str, reason: str, connection: str = "") -> None:
    """End the conversation, unless another connection has taken it over since (a resume)."""
    ended = Conversation.objects.filter(pk=conversation_id, status=Status.ACTIVE, connection=connection).update(
        status=Status.ENDED, end_reason=reason, ended_at=timezone.now()
    )
    if ended:
        emit_conversation_ended(conversation_id)


def _fields(record: TurnRecord) -> dict[str, object]:
    return {field.name: getattr(record, field.name) for field in fields(record)}
