"""A database that is briefly unavailable delays a conversation's writes; it never loses or doubles them.

The connections are really cut: the recorder's database thread has its own backend terminated
(pg_terminate_backend from a second connection), as a server restart or an operator would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, connection
from django_tenants.utils import tenant_context

import conversations.actions as actions
from billing.models import UsageEvent
from conversations.actions import TurnRecord
from conversations.models import Conversation, Turn
from voice.models import Assistant
from voice.recorder import ConversationRecorder

AT = datetime(2026, 6, 1, 12, tzinfo=UTC)
ORIGINAL_RECORD_TURN = actions.do_record_turn


def _kill_this_threads_connection() -> None:
    """Terminate the backend of this thread's Django connection, in use, from another connection.

    In use: the first query of a call checks the connection (CONN_HEALTH_CHECKS) and replaces one that
    died while idle; a connection that dies during a call (or cannot be opened) is what reaches the writer.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])


def _turn(number: int, role: str = "assistant") -> TurnRecord:
    at = AT + timedelta(seconds=number)
    return TurnRecord(
        role=role,
        text=f"turn {number}",
        started_at=at,
        ended_at=at,
        input_mode="voice" if role == "visitor" else "",
        audio_ms=2000.0,
        input_tokens=100,
        output_tokens=20,
        tts_characters=40,
        provider="openai",
        model="gpt-4o-mini",
        route={"llm": {"chosen": "openai:gpt-4o-mini"}, "tts": {"chosen": "openai:gpt-4o-mini-tts"}},
    )


async def _started(alpha, **recorder: Any) -> ConversationRecorder:
    assistant_id = await _in_alpha(alpha, lambda: Assistant.objects.get().pk)
    writer = ConversationRecorder(alpha.organization, str(uuid.uuid4()), **recorder)
    await writer.start(assistant_id=assistant_id, visitor_id="v-1", channel="voice", origin="https://alpha.example")
    return writer


async def _in_alpha(alpha, fn):
    from tenants.tenancy import run_in_tenant

    return await run_in_tenant(alpha.organization, fn)


def _stored(conversation_id: str) -> tuple[list[tuple[int, str]], Counter[str]]:
    """The conversation's turns and how many usage events each turn (or the session) has; in its tenant."""
    turns = list(Turn.objects.filter(conversation_id=conversation_id).values_list("index", "text"))
    keys = UsageEvent.objects.filter(conversation_id=conversation_id).values_list("idempotency_key", flat=True)
    return turns, Counter(key.rsplit(":", 1)[0] for key in keys)


@pytest.mark.django_db(transaction=True)
async def test_a_turn_whose_connection_is_cut_is_stored_once_in_order_with_the_turns_after_it(alpha, monkeypatch):
    attempts = 0

    def cut_twice(**kwargs: Any) -> int:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:  # the first two attempts of the first turn meet a terminated connection
            _kill_this_threads_connection()
        return ORIGINAL_RECORD_TURN(**kwargs)

    writer = await _started(alpha)
    monkeypatch.setattr(actions, "do_record_turn", cut_twice)
    first = writer.turn(_turn(0, "visitor"))
    later = [writer.turn(_turn(number)) for number in (1, 2)]
    ids = await asyncio.wait_for(asyncio.gather(first, *later), timeout=10)
    await writer.close()

    assert attempts == 5  # 3 for the first turn, 1 each for the two after it
    turns, usage_per_turn = await _in_alpha(alpha, lambda: _stored(writer.conversation_id))
    assert turns == [(0, "turn 0"), (1, "turn 1"), (2, "turn 2")]
    assert len(set(ids)) == 3
    # Every turn's usage events once: a visitor's speech (audio in, speech-to-text), a reply's tokens, voice.
    conversation = writer.conversation_id
    assert {prefix: n for prefix, n in usage_per_turn.items() if prefix.startswith("turn:")} == {
        f"turn:{conversation}:0": 2,
        f"turn:{conversation}:1": 4,
        f"turn:{conversation}:2": 4,
    }


@pytest.mark.django_db(transaction=True)
async def test_a_turn_committed_before_its_connection_dropped_is_not_stored_again(alpha, monkeypatch):
    attempts = 0

    def commits_then_loses_the_answer(**kwargs: Any) -> int:
        nonlocal attempts
        attempts += 1
        turn_id = ORIGINAL_RECORD_TURN(**kwargs)  # committed
        if attempts == 1:
            _kill_this_threads_connection()
            with connection.cursor() as cursor:  # the caller never hears of the commit
                cursor.execute("SELECT 1")
        return turn_id

    writer = await _started(alpha)
    monkeypatch.setattr(actions, "do_record_turn", commits_then_loses_the_answer)
    turn_id = await asyncio.wait_for(writer.turn(_turn(0)), timeout=10)
    following = await asyncio.wait_for(writer.turn(_turn(1)), timeout=10)
    await writer.close()

    assert attempts == 3
    turns, usage_per_turn = await _in_alpha(alpha, lambda: _stored(writer.conversation_id))
    assert turns == [(0, "turn 0"), (1, "turn 1")]
    assert following != turn_id
    assert (
        await _in_alpha(alpha, lambda: Turn.objects.get(index=0, conversation_id=writer.conversation_id).pk) == turn_id
    )
    assert usage_per_turn[f"turn:{writer.conversation_id}:0"] == 4
    assert not any(prefix.endswith(":2") for prefix in usage_per_turn)


@pytest.mark.django_db
def test_recording_the_same_turn_again_returns_the_stored_turn(alpha):
    with tenant_context(alpha.organization):
        conversation = actions.do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=Assistant.objects.get().pk,
            visitor_id="v-1",
            channel="voice",
            origin="https://alpha.example",
            connection="c-1",
        )
        record = _turn(0)
        first = actions.do_record_turn(conversation_id=conversation.pk, record=record)
        again = actions.do_record_turn(conversation_id=conversation.pk, record=record)
        other = actions.do_record_turn(conversation_id=conversation.pk, record=_turn(0))  # same content, new turn
        assert first == again != other
        assert Turn.objects.filter(conversation=conversation).count() == 2
    assert UsageEvent.objects.filter(conversation_id=conversation.pk, idempotency_key__contains=":0:").count() == 4


@pytest.mark.django_db
def test_starting_the_same_conversation_again_on_its_connection_returns_it(alpha):
    kwargs = {
        "conversation_id": uuid.uuid4(),
        "visitor_id": "v-1",
        "channel": "voice",
        "origin": "https://alpha.example",
        "connection": "c-1",
    }
    with tenant_context(alpha.organization):
        kwargs["assistant_id"] = Assistant.objects.get().pk
        first = actions.do_start_conversation(**kwargs)
        again = actions.do_start_conversation(**kwargs)
        assert first.pk == again.pk and Conversation.objects.filter(pk=first.pk).count() == 1
        with pytest.raises(IntegrityError):  # another connection may not take the id over by starting it
            actions.do_start_conversation(**kwargs | {"connection": "c-2"})
    assert UsageEvent.objects.filter(conversation_id=first.pk).count() == 1


@pytest.mark.django_db(transaction=True)
async def test_an_integrity_error_is_not_retried(alpha):
    writer = await _started(alpha)
    calls = 0

    def broken() -> None:
        nonlocal calls
        calls += 1
        raise IntegrityError("duplicate key value")

    with pytest.raises(IntegrityError):
        await asyncio.wait_for(writer.call(broken), timeout=5)
    await writer.close()
    assert calls == 1


@pytest.mark.django_db(transaction=True)
async def test_beyond_the_retry_budget_a_write_fails_and_the_next_ones_are_tried_once_until_the_database_answers(
    alpha, caplog
):
    writer = await _started(alpha, retry_s=0.5)
    calls: list[str] = []
    down = True

    def write(name: str) -> str:
        calls.append(name)
        if down:
            raise OperationalError("the database system is shutting down")
        return name

    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(OperationalError):
        await asyncio.wait_for(writer.call(write, name="first"), timeout=5)
    assert 0.4 <= loop.time() - began < 2.0
    assert len(calls) >= 3  # backoff: 0.1, 0.2, then what is left of the budget
    assert "write lost" in caplog.text

    calls.clear()
    with pytest.raises(OperationalError):
        await asyncio.wait_for(writer.call(write, name="second"), timeout=5)
    assert calls == ["second"]  # the database has not answered since: one attempt

    down = False
    assert await asyncio.wait_for(writer.call(write, name="third"), timeout=5) == "third"
    down = True
    calls.clear()
    with pytest.raises(OperationalError):
        await asyncio.wait_for(writer.call(write, name="fourth"), timeout=5)
    assert len(calls) >= 3  # it answered: a full budget again
    await writer.close()


@pytest.mark.django_db(transaction=True)
async def test_close_waits_for_a_write_being_retried(alpha, monkeypatch):
    attempts = 0

    def cut_once(**kwargs: Any) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            _kill_this_threads_connection()
        return ORIGINAL_RECORD_TURN(**kwargs)

    writer = await _started(alpha)
    monkeypatch.setattr(actions, "do_record_turn", cut_once)
    writer.turn(_turn(0))
    writer.end("visitor_ended")
    await asyncio.wait_for(writer.close(), timeout=10)

    turns, _ = await _in_alpha(alpha, lambda: _stored(writer.conversation_id))
    assert turns == [(0, "turn 0")]
    status = await _in_alpha(alpha, lambda: Conversation.objects.get(pk=writer.conversation_id).status)
    assert status == "ended"
