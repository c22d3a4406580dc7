"""Writes to conversations and turns. Run inside the tenant's schema (through run_in_tenant from async code)."""

from __future__ import annotations

import io
import uuid
import wave
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from billing.actions import do_record_model_usage, do_record_session_usage, do_record_turn_usage
from conversations.events import (
    emit_conversation_ended,
    emit_conversation_started,
    emit_handoff_requested,
    emit_lead_captured,
)
from conversations.models import Conversation, Handoff, Lead, Role, Status, ToolCall, Turn, VisitorProfile
from conversations.privacy import redact, redact_value
from core.inserts import insert_rows


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """Everything stored about one turn; timings in milliseconds, None where a stage did not run."""

    role: str
    text: str
    started_at: datetime
    ended_at: datetime
    heard_text: str = ""
    interrupted: bool = False
    delivery: str = ""  # assistant turns: conversations.models.Delivery
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
    intent: str = ""
    emotion: str = ""
    understood_by: str = ""
    tool_calls: tuple[dict[str, object], ...] = ()  # voice.tools.base.ToolRun.as_record() of each call
    audio_pcm: bytes = b""  # the visitor's speech (16-bit PCM), stored only when the organization records audio
    audio_rate: int = 16000  # of audio_pcm: 16 kHz, or a phone caller's 8 kHz
    key: uuid.UUID = field(default_factory=uuid.uuid4)  # makes a retried write store the turn once (Turn.key)


@transaction.atomic
def do_start_conversation(
    *,
    conversation_id: uuid.UUID | str,
    assistant_id: int,
    visitor_id: str,
    channel: str,
    origin: str,
    connection: str = "",
    caller_number: str = "",
    call_sid: str = "",
) -> Conversation:
    """Idempotent for its ``connection``: a retry whose first attempt committed returns that conversation."""
    if connection and (stored := Conversation.objects.filter(pk=conversation_id, connection=connection).first()):
        return stored
    if caller_number and _redacting():
        caller_number = redact(caller_number)
    conversation = Conversation.objects.create(
        id=conversation_id,
        assistant_id=assistant_id,
        visitor_id=visitor_id,
        channel=channel,
        origin=origin[:255],
        connection=connection,
        caller_number=caller_number[:32],
        call_sid=call_sid[:64],
    )
    do_record_session_usage(conversation=conversation)  # billing's event, in the same transaction
    emit_conversation_started(conversation)  # webhooks, sent once this transaction commits
    return conversation


def _redacting() -> bool:
    return bool(getattr(connection.tenant, "redact_personal_data", False))


def do_resume_conversation(*, conversation_id: uuid.UUID | str, connection: str) -> None:
    """A conversation cut by the network continues on a new connection, which now holds it."""
    Conversation.objects.filter(pk=conversation_id).update(
        status=Status.ACTIVE, end_reason="", ended_at=None, connection=connection
    )


@transaction.atomic
def do_record_turn(*, conversation_id: uuid.UUID | str, record: TurnRecord) -> int:
    """Append a turn and its usage events (billing, public schema, same transaction); returns its id.
    Idempotent: if a turn with the record's ``key`` is stored already (an earlier attempt committed and
    then lost its connection before it heard so), that turn's id is returned and nothing is written.

    The conversation row is locked so indexes never collide. Every live turn passes here, on the
    voice server's one database thread: the statements are built once (core.inserts, _LOCK_NEXT_INDEX).
    """
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_NEXT_INDEX, [record.key, conversation_id])
        found = cursor.fetchone()
    if found is None:
        raise Conversation.DoesNotExist(f"conversation {conversation_id} does not exist")
    assistant_id, channel, last, stored = found
    if stored is not None:
        return int(stored)
    conversation = Conversation(id=conversation_id, assistant_id=assistant_id, channel=channel)
    organization = connection.tenant
    redacting = getattr(organization, "redact_personal_data", False)
    values = _fields(record)
    if redacting:
        values["text"], values["heard_text"] = redact(record.text), redact(record.heard_text)
    turn = Turn(conversation_id=conversation_id, index=0 if last is None else last + 1, **values)
    if record.audio_pcm and getattr(organization, "record_audio", False):
        turn.audio.save(
            f"{conversation_id}-{turn.index}.wav", ContentFile(_wav(record.audio_pcm, record.audio_rate)), save=False
        )
    insert_rows([turn])
    if record.tool_calls:
        ToolCall.objects.bulk_create(
            ToolCall(
                conversation_id=conversation_id,
                turn=turn,
                round=int(call.get("round", 1)),  # type: ignore[call-overload]
                name=str(call["name"]),
                arguments=redact_value(call.get("arguments", {})) if redacting else call.get("arguments", {}),
                result=redact(str(call.get("result", ""))) if redacting else str(call.get("result", "")),
                status=str(call.get("status", ToolCall.Status.OK)),
                duration_ms=call.get("duration_ms"),
            )
            for call in record.tool_calls
        )
    do_record_turn_usage(conversation=conversation, turn=turn)
    return turn.pk


# The conversation locked, with what its turn's usage events need, its last turn's index, and the id of
# the turn with the record's key if one is stored (turn_key_unique's index).
_TURNS, _CONVERSATIONS = Turn._meta.db_table, Conversation._meta.db_table  # noqa: SLF001 - Django's model API
_LOCK_NEXT_INDEX = (
    f'SELECT c."assistant_id", c."channel", '
    f'(SELECT MAX(t."index") FROM "{_TURNS}" t WHERE t."conversation_id" = c."id"), '
    f'(SELECT k."id" FROM "{_TURNS}" k WHERE k."conversation_id" = c."id" AND k."key" = %s) '
    f'FROM "{_CONVERSATIONS}" c WHERE c."id" = %s FOR UPDATE OF c'
)


def do_record_heard_text(
    *, turn_id: int, heard_text: str, played_ms: float, interrupted: bool, delivery: str = ""
) -> None:
    """What the visitor actually heard of an assistant turn, once the client reports its playback."""
    changes: dict[str, object] = {"heard_text": heard_text, "played_ms": played_ms, "interrupted": interrupted}
    if delivery:
        changes["delivery"] = delivery
    Turn.objects.filter(pk=turn_id, role=Role.ASSISTANT).update(**changes)


def do_record_turn_understanding(
    *, turn_id: int, emotion: str, intent: str, understood_by: str, **model_use: Any
) -> None:
    """The slower tier's emotion and intent of a visitor turn, and the tokens it spent (billing)."""
    turn = Turn.objects.filter(pk=turn_id, role=Role.VISITOR).only("id", "conversation_id").first()
    if turn is None:
        return
    Turn.objects.filter(pk=turn_id).update(emotion=emotion, intent=intent, understood_by=understood_by)
    _record_memory_usage(turn.conversation_id, f"understanding:{turn_id}", model_use)


def do_end_conversation(*, conversation_id: uuid.UUID | str, reason: str, connection: str = "") -> None:
    """End the conversation, unless another connection has taken it over since (a resume)."""
    ended = Conversation.objects.filter(pk=conversation_id, status=Status.ACTIVE, connection=connection).update(
        status=Status.ENDED, end_reason=reason, ended_at=timezone.now()
    )
    if ended:
        emit_conversation_ended(conversation_id)


_NOT_TURN_FIELDS = frozenset({"tool_calls", "audio_pcm", "audio_rate"})


def _fields(record: TurnRecord) -> dict[str, object]:
    return {field.name: getattr(record, field.name) for field in fields(record) if field.name not in _NOT_TURN_FIELDS}


def _wav(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


# ---------------------------------------------------------------- what tools write
@transaction.atomic
def do_capture_lead(
    *, conversation_id: uuid.UUID | str | None, visitor_id: str, name: str, email: str, phone: str, note: str
) -> int:
    lead = Lead.objects.create(
        conversation_id=conversation_id, visitor_id=visitor_id, name=name, email=email, phone=phone, note=note
    )
    emit_lead_captured(lead)  # webhooks, sent once this transaction commits
    return lead.pk


@transaction.atomic
def do_request_handoff(*, conversation_id: uuid.UUID | str, reason: str, contact: str, transcript: str) -> int:
    if getattr(connection.tenant, "redact_personal_data", False):
        transcript = redact(transcript)
    handoff = Handoff.objects.create(
        conversation_id=conversation_id, reason=reason, contact=contact, transcript=transcript
    )
    emit_handoff_requested(handoff)
    return handoff.pk


# ---------------------------------------------------------------- memory
@dataclass(frozen=True, slots=True)
class ForgottenVisitor:
    profiles: int  # profiles deleted (0 or 1)
    conversation_ids: list[uuid.UUID | str]  # the visitor's conversations (other apps forget their part of them)
    recordings: int  # recorded turns whose audio was deleted


@transaction.atomic
def do_forget_visitor(*, visitor_id: str, conversation_id: uuid.UUID | str | None = None) -> ForgottenVisitor:
    """This schema's part of forgetting a visitor (``aura.workflows.visitors.forget_visitor`` does the
    rest): their profile goes, the conversation they asked in (if any) is marked so that nothing is learnt
    from it later, on any connection, and the recordings of their speech in their conversations are
    deleted (the files once the transaction commits)."""
    if conversation_id is not None:
        Conversation.objects.filter(pk=conversation_id).update(visitor_forgotten=True)
    theirs = list(Conversation.objects.filter(visitor_id=visitor_id).values_list("pk", flat=True)) if visitor_id else []
    conversation_ids = [
        *theirs,
        *([conversation_id] if conversation_id is not None and conversation_id not in theirs else []),
    ]
    recorded = Turn.objects.filter(conversation_id__in=conversation_ids).exclude(audio="")
    audio = list(recorded.values_list("audio", flat=True))
    recordings = recorded.update(audio="")
    transaction.on_commit(lambda names=audio: _delete_files(names))
    profiles = VisitorProfile.objects.filter(visitor_id=visitor_id).delete()[0] if visitor_id else 0
    return ForgottenVisitor(profiles=profiles, conversation_ids=conversation_ids, recordings=recordings)


@transaction.atomic
def do_remember_visitor(
    *,
    visitor_id: str,
    conversation_id: uuid.UUID | str,
    name: str,
    preferences: list[str],
    open_requests: list[str],
    **model_use: Any,
) -> None:
    """Store what a conversation taught about its visitor (voice.memory decides what that is), and the
    tokens the model spent learning it (billing; ``model_use``: llm_provider, llm_model, input/output_tokens)."""
    forgotten = Conversation.objects.filter(pk=conversation_id, visitor_forgotten=True).exists()
    if (name or preferences or open_requests) and not forgotten:
        profile, _ = VisitorProfile.objects.select_for_update().get_or_create(visitor_id=visitor_id)
        profile.name = name[:120]
        profile.preferences = preferences
        profile.open_requests = open_requests
        profile.last_conversation_id = conversation_id
        profile.conversations += 1
        profile.save()
    _record_memory_usage(conversation_id, f"profile:{conversation_id}", model_use)


@transaction.atomic
def do_record_summary(*, conversation_id: uuid.UUID | str, summary: str, through_index: int, **model_use: Any) -> None:
    """The running summary of a conversation's older turns (never moves backwards), and its tokens."""
    if getattr(connection.tenant, "redact_personal_data", False):
        summary = redact(summary)
    Conversation.objects.filter(pk=conversation_id, summary_through__lte=through_index).update(
        summary=summary, summary_through=through_index
    )
    _record_memory_usage(conversation_id, f"summary:{conversation_id}:{through_index}", model_use)


@transaction.atomic
def do_record_unheard_reply(*, conversation_id: uuid.UUID | str, reply_key: str, **model_use: Any) -> None:
    """The tokens of a reply started before the visitor's turn ended and thrown away because they went on
    speaking: billed like any model call, never a turn (nothing of it was said). ``reply_key`` names the
    reply within the conversation, so recording it again counts once."""
    _record_memory_usage(conversation_id, f"{UNHEARD_REPLY_KEY}{conversation_id}:{reply_key}", model_use)


# Usage events of unheard replies have keys starting "model:" + this (bench.voice's wasted tokens).
UNHEARD_REPLY_KEY = "preemptive:"


def _record_memory_usage(conversation_id: uuid.UUID | str, key: str, model_use: dict[str, Any]) -> None:
    if not (model_use.get("input_tokens") or model_use.get("output_tokens")):
        return
    conversation = Conversation.objects.only("id", "assistant_id", "channel").filter(pk=conversation_id).first()
    if conversation is not None:
        do_record_model_usage(
            conversation=conversation,
            key=key,
            provider=model_use.get("llm_provider", ""),
            model=model_use.get("llm_model", ""),
            input_tokens=int(model_use.get("input_tokens", 0)),
            output_tokens=int(model_use.get("output_tokens", 0)),
        )


# ---------------------------------------------------------------- retention
def do_delete_conversations(conversations: QuerySet[Conversation]) -> int:
    """Delete conversations with their turns, tool calls, hand-offs and recorded audio. Leads stay."""
    deleted = 0
    for chunk_ids in _chunks(list(conversations.values_list("pk", flat=True)), 500):
        with transaction.atomic():
            audio = list(
                Turn.objects.filter(conversation_id__in=chunk_ids).exclude(audio="").values_list("audio", flat=True)
            )
            deleted += Conversation.objects.filter(pk__in=chunk_ids).delete()[1].get("conversations.Conversation", 0)
            transaction.on_commit(lambda names=audio: _delete_files(names))
    return deleted


def do_apply_retention(*, now: datetime | None = None) -> int:
    """Delete this organization's conversations older than its retention period; returns how many."""
    days = getattr(connection.tenant, "retention_days", None)
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return do_delete_conversations(Conversation.objects.filter(started_at__lt=cutoff))


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _chunks(items: list[uuid.UUID], size: int) -> list[list[uuid.UUID]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


# ---------------------------------------------------------------- hand-offs
@transaction.atomic
def do_resolve_handoff(*, handoff_id: int) -> Handoff:
    """A person took care of the hand-off: mark it done (done again is a no-op)."""
    handoff = Handoff.objects.select_for_update().get(pk=handoff_id)
    if handoff.state != Handoff.State.DONE:
        handoff.state = Handoff.State.DONE
        handoff.save(update_fields=["state"])
    return handoff


# ---------------------------------------------------------------- leads
def do_delete_lead(*, lead_id: int) -> int:
    """Delete a captured lead (the visitor asked, or it was handled elsewhere). Returns how many were deleted."""
    deleted, _ = Lead.objects.filter(pk=lead_id).delete()
    return deleted
