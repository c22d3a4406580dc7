"""A call to the demo assistant exactly as `make run` ships it (no keys, espeak-ng, default settings):
the greeting and the answer reach the caller as speech, not silence and not an error."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from aura.management.commands.seed_demo import DEMO_SLUG
from conversations.models import Turn
from telephony.models import Call, PhoneNumber
from tenants.queries import organization_by_slug
from tests.conftest import require_tool
from tests.fakes.twilio import FakeTwilioCall, decode, phone_speech, ring, stream_of, ulaw_silence
from tests.servers import PLATFORM_TWILIO_ACCOUNT_SID, PLATFORM_TWILIO_AUTH_TOKEN
from tests.telephony.conftest import CALLER
from tests.waiting import eventually
from voice.queries import default_assistant_id

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
DEMO_NUMBER = "+14155550300"


def _demo_number() -> None:
    demo = organization_by_slug(DEMO_SLUG)
    with tenant_context(demo):
        assistant_id = default_assistant_id()
    PhoneNumber.objects.create(organization=demo, number=DEMO_NUMBER, assistant_id=assistant_id)  # platform's account


def _turns(call_sid: str) -> list[Turn]:
    with tenant_context(organization_by_slug(DEMO_SLUG)):
        return list(Turn.objects.filter(conversation__call_sid=call_sid).order_by("index"))


def _loudness(call: FakeTwilioCall, reply: int) -> float:
    """RMS of the µ-law audio the caller got for one reply (each chunk is followed by its own mark)."""
    pcm, pending = [], []
    for _, message in call.received:
        if message.get("event") == "media":
            pending.append(base64.b64decode(message["media"]["payload"]))
        elif message.get("event") == "mark":
            if message["mark"]["name"].startswith(f"r{reply}:"):
                pcm.extend(decode(chunk) for chunk in pending)
            pending.clear()
    samples = np.concatenate(pcm).astype(np.float64) if pcm else np.zeros(1)
    return float(np.sqrt(np.mean(samples**2)))


async def test_the_default_demo_answers_a_caller_out_loud(newcomer_server):
    require_tool("espeak-ng", "a newcomer's make run speaks with espeak-ng")
    await sync_to_async(_demo_number)()
    status, twiml, call_sid = await asyncio.to_thread(
        ring,
        newcomer_server.base_url,
        auth_token=PLATFORM_TWILIO_AUTH_TOKEN,
        to=DEMO_NUMBER,
        caller=CALLER,
        account_sid=PLATFORM_TWILIO_ACCOUNT_SID,
    )
    assert status == 200, twiml
    call = await FakeTwilioCall.connect(stream_of(twiml), call_sid=call_sid, account_sid=PLATFORM_TWILIO_ACCOUNT_SID)
    await call.start(stream_of(twiml).parameters)

    # the greeting is heard as speech
    await call.wait_heard(1, timeout=30)
    assert call.audio[1] > 8000 // 2, "at least half a second of greeting"
    assert _loudness(call, 1) > 300, "the greeting is audible, not silence"

    # the caller asks about the opening hours; the answer is heard as speech too
    question = phone_speech("hours.wav") + ulaw_silence(300)
    await call.speak(question)
    turns = await eventually(lambda: len(found := _turns(call_sid)) >= 3 and found, timeout=20)
    if not turns:  # offline recognition took longer than its bound on a busy machine: the caller asks again
        await call.speak(question)
        turns = await eventually(lambda: len(found := _turns(call_sid)) >= 3 and found, timeout=30)
    assert turns, "the question was answered"
    await call.wait_heard(2, timeout=40)
    assert call.audio[2] > 8000 // 2
    assert _loudness(call, 2) > 300, "the answer is audible, not silence"
    assert turns[0].text and turns[0].heard_text == turns[0].text
    assert turns[2].role == "assistant" and turns[2].text and turns[2].heard_text == turns[2].text
    assert {turn.delivery for turn in turns if turn.role == "assistant"} == {"complete"}

    await call.hang_up()
    await eventually(lambda: Call.objects.filter(call_sid=call_sid, ended_at__isnull=False).exists(), timeout=20)
