"""End to end through a real daphne: the concurrent limit closes with 4029, a real voice turn writes
usage events, and a session past the hard cap ends at the next turn with a goodbye."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from billing.models import UsageEvent
from billing.periods import Period
from conversations.actions import UNHEARD_REPLY_KEY
from tests.billing.conftest import make_plan, subscribe
from tests.voice.client import VoiceClient, read_wav, request_session, silence
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _plan_alpha(alpha, **fields) -> None:
    subscribe(alpha.organization, make_plan(**fields), at=Period.month_of(timezone.now()).starts_at)


async def _token(server, tenant) -> dict:
    key = await sync_to_async(lambda: tenant.widget_key.key)()
    status, body = await asyncio.to_thread(request_session, server.base_url, key, tenant.origin)
    assert status == 200, body
    return body


def _usage(conversation_id: str) -> dict[str, float]:
    """Quantities per metric, summed over the conversation's turns, without the replies started at a
    pause and thrown away because the visitor went on speaking (billed, never said)."""
    totals: dict[str, float] = {}
    for event in UsageEvent.objects.filter(conversation_id=conversation_id):
        if not event.idempotency_key.startswith(f"model:{UNHEARD_REPLY_KEY}"):
            totals[event.metric] = totals.get(event.metric, 0.0) + float(event.quantity)
    return totals


def _metered_conversations() -> set[str]:
    return {str(c) for c in UsageEvent.objects.values_list("conversation_id", flat=True)}


async def test_the_concurrent_limit_closes_with_4029_and_a_spoken_turn_is_metered(daphne_server, alpha):
    await sync_to_async(_plan_alpha)(alpha, max_concurrent_sessions=1)
    first_token, second_token = await _token(daphne_server, alpha), await _token(daphne_server, alpha)

    first = await VoiceClient.connect(first_token["ws_url"], alpha.origin)
    await first.start(16000)
    second = await VoiceClient.connect(second_token["ws_url"], alpha.origin)
    assert await second.wait_closed() == 4029
    assert second.of_type("error") == [
        {
            "type": "error",
            "code": "concurrent_limit",
            "message": "All of this assistant's lines are busy right now. Please try again in a minute.",
        }
    ]
    key = await sync_to_async(lambda: alpha.widget_key.key)()
    status, body = await asyncio.to_thread(request_session, daphne_server.base_url, key, alpha.origin)
    assert (status, body["error"]["code"]) == (429, "concurrent_limit")

    await first.wait_for("response.done", response_id=1)  # the greeting
    speech, rate = read_wav("hours.wav")
    await first.stream(speech + silence(300), rate)
    done = await first.wait_for("response.done", response_id=2)
    await first.send({"type": "session.end"})
    assert await first.wait_closed() == 1000

    conversation_id = first_token["conversation_id"]
    usage = await eventually(lambda: len(_usage(conversation_id)) >= 7 and _usage(conversation_id))
    assert usage["session"] == 1
    # the visitor's speech; speech-to-text bills the audio sent (the speech with its pre-roll and trailing silence)
    assert usage["stt_seconds"] >= usage["audio_in_seconds"] > 1.5
    # the answer's tokens; a reply started at a pause inside the question (a loaded machine can hear one
    # there) and thrown away is billed too, under its own keys, and not counted here
    assert usage["llm_output_tokens"] == done["metrics"]["output_tokens"] > 0
    assert usage["tts_characters"] > len(done["text"])  # the greeting's and the answer's
    assert usage["audio_out_seconds"] > 1
    assert second_token["conversation_id"] not in await sync_to_async(_metered_conversations)()  # refused: no session

    third = await VoiceClient.connect((await _token(daphne_server, alpha))["ws_url"], alpha.origin)
    assert (await third.start(16000))["type"] == "session.created"  # the slot was given back
    await third.close()


async def test_two_sessions_racing_for_the_last_slot_get_one(daphne_server, alpha):
    await sync_to_async(_plan_alpha)(alpha, max_concurrent_sessions=1)
    tokens = [await _token(daphne_server, alpha) for _ in range(2)]

    clients = await asyncio.gather(*(VoiceClient.connect(t["ws_url"], alpha.origin) for t in tokens))
    outcomes = await asyncio.gather(*(_started_or_refused(client) for client in clients))

    assert sorted(outcomes) == ["refused 4029", "started"]
    for client in clients:
        if client.close_code is None:
            await client.close()


async def _started_or_refused(client: VoiceClient) -> str:
    await client.send({"type": "session.start", "sample_rate": 16000})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if client.first("session.created"):
            return "started"
        if client.close_code is not None:
            return f"refused {client.close_code}"
        await asyncio.sleep(0.02)
    raise AssertionError(f"neither started nor refused: {client.types()}")


async def test_a_session_past_the_hard_cap_says_goodbye_at_the_next_turn(daphne_server, alpha):
    await sync_to_async(_plan_alpha)(alpha, cap="hard", included_minutes=0, included_text_tokens=40)
    token = await _token(daphne_server, alpha)
    client = await VoiceClient.connect(token["ws_url"], alpha.origin)
    await client.start(text_only=True)
    await client.wait_for("response.done", response_id=1)

    await client.send({"type": "input.text", "text": "What are your opening hours, and do you take reservations?"})
    await client.wait_for("response.done", response_id=2)  # this reply uses up the 40 tokens
    await asyncio.sleep(0.5)  # its turn is stored and the quota looked at, in the background
    await client.send({"type": "input.text", "text": "And on Sundays?"})

    goodbye = await client.wait_for("response.done", response_id=3)
    assert "usage limit" in goodbye["text"]
    assert (await client.wait_for("session.ended"))["reason"] == "quota"
    assert await client.wait_closed() == 4029
    key = await sync_to_async(lambda: alpha.widget_key.key)()
    status, body = await asyncio.to_thread(request_session, daphne_server.base_url, key, alpha.origin)
    assert (status, body["error"]["code"]) == (402, "quota_exceeded")
