"""Voice sessions end to end: a real daphne process, a real WebSocket, real speech WAVs."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from conversations.models import Conversation, Turn
from tests.voice.client import VoiceClient, read_wav, request_session, silence
from tests.voice.sessions import assistant_settings
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _turns(tenant, conversation_id: str) -> list[Turn]:
    with tenant_context(tenant.organization):
        return list(Turn.objects.filter(conversation_id=conversation_id).order_by("index"))


def _conversation(tenant, conversation_id: str) -> Conversation | None:
    with tenant_context(tenant.organization):
        return Conversation.objects.filter(pk=conversation_id).first()


async def _open(server, tenant) -> tuple[VoiceClient, str]:
    key = await sync_to_async(lambda: tenant.widget_key.key)()
    status, body = await asyncio.to_thread(request_session, server.base_url, key, tenant.origin)
    assert status == 200, body
    client = await VoiceClient.connect(body["ws_url"], tenant.origin)
    return client, body["conversation_id"]


async def test_a_spoken_question_gets_transcript_reply_text_and_audio(daphne_server, alpha):
    client, conversation_id = await _open(daphne_server, alpha)
    created = await client.start(16000)
    assert created["simulated"] is True and created["output_sample_rate"] == 24000
    greeting = await client.wait_for("response.done", response_id=1)

    speech, rate = read_wav("hours.wav")
    await client.stream(speech + silence(300), rate)

    stopped = await client.wait_for("speech.stopped")
    transcript = await client.wait_for("transcript.final")
    done = await client.wait_for("response.done", response_id=2)
    assert stopped["speech_ms"] > 1500
    assert "saturday" in transcript["text"], transcript  # PocketSphinx, offline, really heard it
    assert transcript["input"] == "voice"
    assert "open" in done["text"].lower()
    assert client.audio.get(2), "the reply was spoken"
    assert done["metrics"]["first_audio_ms"] is not None and done["metrics"]["stt_ms"] is not None
    deltas = "".join(e["delta"] for e in client.of_type("response.text.delta") if e["response_id"] == 2)
    assert deltas == done["text"]
    await client.send({"type": "session.end"})
    assert await client.wait_closed() == 1000

    conversation = await eventually(
        lambda: _conversation(alpha, conversation_id).status == "ended" and _conversation(alpha, conversation_id)
    )
    assert conversation.end_reason == "visitor_ended"
    turns = await sync_to_async(_turns)(alpha, conversation_id)
    assert [(t.role, t.input_mode) for t in turns] == [("assistant", ""), ("visitor", "voice"), ("assistant", "")]
    assert turns[0].text == greeting["text"]
    assert "saturday" in turns[1].text and turns[1].stt_ms is not None and turns[1].endpoint_delay_ms is not None
    assert turns[2].heard_text == turns[2].text == done["text"] and not turns[2].interrupted


async def test_barge_in_stops_the_reply_and_keeps_only_what_was_heard(daphne_server, alpha):
    client, conversation_id = await _open(daphne_server, alpha)
    await client.start(16000)
    first_audio_at = await client.wait_audio(1)  # the greeting is playing
    speech, rate = read_wav("interrupt.wav")

    await client.stream(speech[: rate * 2 * 3], rate)  # 0.5 s of silence, then "Wait, stop…"
    interrupted = await client.wait_for("response.interrupted", response_id=1)
    played = client.played_ms(1, client.first("response.interrupted").at)
    await client.send({"type": "response.played", "response_id": 1, "played_ms": played})
    await asyncio.sleep(0.5)  # anything stale would arrive now

    assert interrupted["reason"] == "barge_in"
    assert client.stale_chunks == 0
    assert client.first("speech.started").event["barge_in"] is True
    # the cut greeting's terminal event: after what was heard, status "interrupted"
    done = await client.wait_for("response.done", response_id=1)
    assert (done["status"], done["reason"]) == ("interrupted", "barge_in")
    assert client.first("response.heard", response_id=1).at <= client.first("response.done", response_id=1).at
    interrupted_after_s = client.first("response.interrupted").at - first_audio_at
    assert 0.5 < interrupted_after_s < 2.5

    def greeting_turn():
        turns = _turns(alpha, conversation_id)
        return turns[0] if turns and turns[0].played_ms == played else None

    turn = await eventually(greeting_turn)
    assert turn is not None, "the client's played report reached the stored turn"
    assert turn.interrupted is True
    assert turn.heard_text and turn.heard_text != turn.text
    assert turn.text.startswith(turn.heard_text.rstrip(".,"))
    await client.close()


async def test_a_short_backchannel_does_not_interrupt(daphne_server, alpha):
    client, _ = await _open(daphne_server, alpha)
    await client.start(16000)
    await client.wait_audio(1)
    mhm, rate = read_wav("mhm.wav")

    await client.stream(mhm, rate)
    done = await client.wait_for("response.done", response_id=1)

    assert done["status"] == "completed"
    assert client.first("response.interrupted") is None
    await client.close()


async def test_typing_instead_of_speaking(daphne_server, alpha):
    # no tools: the simulated model answers from its canned replies, whatever knowledge earlier tests left
    async with assistant_settings(alpha, tools=[]):
        client, conversation_id = await _open(daphne_server, alpha)
        await client.start(48000)

        await client.send({"type": "input.text", "text": "Do you deliver, and what does it cost?"})
        transcript = await client.wait_for("transcript.final", input="text")
        done = await client.wait_for("response.done", response_id=2)

    assert transcript["text"] == "Do you deliver, and what does it cost?"
    assert "deliver" in done["text"].lower()
    assert client.audio.get(2)
    await client.close()
    turns = await eventually(lambda: len(_turns(alpha, conversation_id)) >= 3 and _turns(alpha, conversation_id))
    assert ("visitor", "text") in [(t.role, t.input_mode) for t in turns]


async def test_text_only_sessions_get_text_and_no_audio(daphne_server, alpha):
    client, _ = await _open(daphne_server, alpha)
    created = await client.start(text_only=True)
    assert created["text_only"] is True

    await client.send({"type": "input.text", "text": "hello"})
    done = await client.wait_for("response.done", response_id=2)

    assert done["text"] and not client.audio
    await client.send_raw(b"\x00\x00" * 320)
    error = await client.wait_for("error")
    assert error["code"] == "text_only_session"
    await client.close()


async def test_a_dropped_connection_resumes_the_same_conversation(daphne_server, alpha):
    key = await sync_to_async(lambda: alpha.widget_key.key)()
    status, first = await asyncio.to_thread(request_session, daphne_server.base_url, key, alpha.origin)
    client = await VoiceClient.connect(first["ws_url"], alpha.origin)
    await client.start(text_only=True)
    await client.send({"type": "input.text", "text": "hello"})
    await client.wait_for("response.done", response_id=2)
    client.ws.transport.abort()  # the network drops: no session.end, no close frame
    await client.wait_closed()

    def ended():
        conversation = _conversation(alpha, first["conversation_id"])
        return conversation.end_reason == "disconnected" and conversation

    assert await eventually(ended), "the dropped connection ended the conversation as disconnected"
    # the widget keeps the visitor token and the resume token the first answer gave it
    status, again = await asyncio.to_thread(
        request_session,
        daphne_server.base_url,
        key,
        alpha.origin,
        resume=first["conversation_id"],
        visitor_token=first["visitor_token"],
        resume_token=first["resume_token"],
    )
    _, stranger = await asyncio.to_thread(  # another browser, even one that got hold of the resume token
        request_session,
        daphne_server.base_url,
        key,
        alpha.origin,
        resume=first["conversation_id"],
        resume_token=first["resume_token"],
    )
    resumed = await VoiceClient.connect(again["ws_url"], alpha.origin)
    created = await resumed.start(text_only=True)
    await resumed.send({"type": "input.text", "text": "Are you open on Sunday?"})
    await resumed.wait_for("response.done", response_id=1)
    await resumed.send({"type": "session.end"})
    await resumed.wait_closed()

    assert status == 200
    assert again["resumed"] is True
    assert again["conversation_id"] == first["conversation_id"]
    assert stranger["resumed"] is False  # another visitor cannot pick it up
    assert stranger["conversation_id"] != first["conversation_id"]
    assert created["resumed"] is True
    assert resumed.first("response.started", response_id=1) is not None  # no greeting: straight to the answer
    turns = await eventually(
        lambda: len(_turns(alpha, first["conversation_id"])) == 5 and _turns(alpha, first["conversation_id"])
    )
    assert [t.index for t in turns] == [0, 1, 2, 3, 4]
    assert turns[3].text == "Are you open on Sunday?"
    conversation = await sync_to_async(_conversation)(alpha, first["conversation_id"])
    assert conversation.status == "ended"
    assert conversation.end_reason == "visitor_ended"
