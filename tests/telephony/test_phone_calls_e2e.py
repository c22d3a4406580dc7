"""Phone calls end to end: the fake Twilio rings a real daphne, streams µ-law speech in real time and
plays what comes back; the same VoiceSession as the widget answers."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from billing.models import UsageEvent
from conversations.models import Conversation, Turn
from telephony.models import Call, PhoneNumber
from tests.fakes.twilio import FakeTwilioCall, phone_speech, ring, stream_of, ulaw_silence
from tests.telephony.conftest import ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN, ALPHA_NUMBER, CALLER
from tests.voice.sessions import assistant_settings
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def conversation_of(tenant, call_sid: str) -> Conversation | None:
    with tenant_context(tenant.organization):
        return Conversation.objects.filter(call_sid=call_sid).first()


def turns_of(tenant, call_sid: str) -> list[Turn]:
    with tenant_context(tenant.organization):
        return list(Turn.objects.filter(conversation__call_sid=call_sid).order_by("index"))


async def hang_up_and_wait(call: FakeTwilioCall) -> None:
    """The caller hangs up; return once the server has stored the call's end. A transactional test's
    flush that overlaps those writes deadlocks with them, so no test may end before they are done."""
    await call.hang_up()
    await eventually(lambda: Call.objects.filter(call_sid=call.call_sid, ended_at__isnull=False).exists(), timeout=20)


async def place_call(
    server, *, to: str = ALPHA_NUMBER, token: str = ALPHA_AUTH_TOKEN, account_sid: str = ALPHA_ACCOUNT_SID
) -> FakeTwilioCall:
    status, twiml, call_sid = await asyncio.to_thread(
        ring, server.base_url, auth_token=token, to=to, caller=CALLER, account_sid=account_sid
    )
    assert status == 200, twiml
    stream = stream_of(twiml)
    assert stream is not None, twiml
    call = await FakeTwilioCall.connect(stream, call_sid=call_sid, account_sid=account_sid)
    await call.start(stream.parameters)
    return call


async def test_a_caller_asks_a_question_and_hears_the_answer(daphne_server, alpha, alpha_number):
    # given the voice webhook answers with a stream to the platform's Media Streams socket
    status, twiml, call_sid = await asyncio.to_thread(
        ring,
        daphne_server.base_url,
        auth_token=ALPHA_AUTH_TOKEN,
        to=ALPHA_NUMBER,
        caller=CALLER,
        account_sid=ALPHA_ACCOUNT_SID,
    )
    assert status == 200
    stream = stream_of(twiml)
    assert stream is not None and stream.url == f"{daphne_server.ws_base}/ws/twilio/"
    assert set(stream.parameters) == {"token"}
    call = await FakeTwilioCall.connect(stream, call_sid=call_sid)
    await call.start(stream.parameters)

    # when the greeting has played and the caller asks about Saturday
    await eventually(lambda: len(turns_of(alpha, call_sid)) >= 1)
    await call.wait_heard(1)
    await call.speak(phone_speech("hours.wav") + ulaw_silence(300))

    # then the question is understood from 8 kHz µ-law, answered, and the answer is heard in full
    turns = await eventually(lambda: len(found := turns_of(alpha, call_sid)) >= 3 and found, timeout=30)
    assert turns[1].role == "visitor" and turns[1].input_mode == "voice"
    assert "what are your opening" in turns[1].text, turns[1].text  # PocketSphinx on the phone band
    assert turns[2].role == "assistant" and "open" in turns[2].text.lower()
    await call.wait_heard(2)
    assert call.audio[2] > 8000 // 2, "at least half a second of the answer reached the caller"
    assert call.played[2] == pytest.approx(call.audio[2] / 8, abs=1), "every chunk played, to its mark"
    assert not call.clears and call.stale_media == 0
    assert turns[2].heard_text == turns[2].text and not turns[2].interrupted

    # when the caller hangs up
    await call.hang_up()

    # then the conversation is a phone conversation with the caller's number and the call SID
    conversation = await eventually(
        lambda: (found := conversation_of(alpha, call_sid)) and found.status == "ended" and found
    )
    assert conversation.channel == "phone" and conversation.caller_number == CALLER
    assert conversation.end_reason == "visitor_ended" and conversation.origin == ALPHA_NUMBER
    assert conversation.visitor_id == ""  # caller ID can be faked: no memory of callers unless the number opts in
    recorded = await eventually(lambda: (found := Call.objects.get(call_sid=call_sid)).ended_at and found)
    assert recorded.direction == "inbound" and recorded.from_number == CALLER
    assert str(recorded.conversation_id) == str(conversation.pk)
    minutes = await eventually(
        lambda: UsageEvent.objects.filter(idempotency_key__startswith=f"call:{call_sid}:").first()
    )
    assert (minutes.metric, minutes.channel, minutes.model) == ("phone_in_seconds", "phone", "inbound")
    assert minutes.quantity == recorded.duration_s > 0 and minutes.cost > 0


async def test_barge_in_clears_twilio_and_keeps_only_what_the_caller_heard(daphne_server, alpha, alpha_number):
    # given a call whose greeting is playing
    call = await place_call(daphne_server)
    await call.wait_until(lambda: call.audio.get(1, 0) > 0, what="greeting audio")

    # when the caller talks over it ("Wait, stop, I have another question.")
    speech = phone_speech("interrupt.wav")
    await call.speak(speech[: 8000 * 3])

    # then the server sends clear, and not one more chunk of the greeting arrives after it
    await call.wait_until(lambda: call.clears, what="clear")
    assert call.clears[0][1] == 1
    await asyncio.sleep(0.5)  # anything stale would arrive now
    assert call.stale_media == 0

    # and the stored greeting keeps only what had played when it was cut: never more than the caller heard
    turn = await eventually(
        lambda: (found := turns_of(alpha, call.call_sid)) and found[0].interrupted and found[0].played_ms and found[0]
    )
    assert turn.heard_text and len(turn.heard_text) < len(turn.text)
    assert turn.text.startswith(turn.heard_text.rstrip(" .…"))
    assert turn.played_ms <= call.played[1] + 40  # what the marks told, plus at most a loop's delay
    await call.speak(speech[8000 * 3 :] + ulaw_silence(300))
    turns = await eventually(lambda: len(found := turns_of(alpha, call.call_sid)) >= 3 and found, timeout=30)
    assert turns[1].role == "visitor" and turns[2].role == "assistant"
    await hang_up_and_wait(call)


async def test_keys_pressed_reach_the_assistant_as_the_callers_words(daphne_server, alpha, alpha_number):
    # given a call past its greeting
    call = await place_call(daphne_server)
    await eventually(lambda: len(turns_of(alpha, call.call_sid)) >= 1)
    await call.wait_heard(1)

    # when the caller presses 2
    await call.press("2")

    # then the model gets it as the caller's input, and answers out loud
    turns = await eventually(lambda: len(found := turns_of(alpha, call.call_sid)) >= 3 and found, timeout=30)
    assert (turns[1].role, turns[1].input_mode) == ("visitor", "dtmf")
    assert turns[1].text == "The caller pressed 2 on the phone's keypad."
    assert turns[2].role == "assistant" and turns[2].text
    await call.wait_heard(2)
    assert call.audio[2] > 0
    await hang_up_and_wait(call)


async def test_the_assistant_hangs_up_only_after_its_last_words_were_heard(daphne_server, alpha, alpha_number):
    # given an assistant that gives up on a silent caller after 2 s (a reminder, then goodbye)
    async with assistant_settings(alpha, idle_timeout_s=2):
        call = await place_call(daphne_server)

        # when the caller stays silent through the greeting and the reminder
        code = await call.wait_closed(timeout=40)

    # then the session ends the call (idle timeout), but only once Twilio had played everything sent
    assert code == 4008
    last = max(call.audio)
    assert last >= 2, "the reminder was spoken"
    assert call.played.get(last, 0) == pytest.approx(call.audio[last] / 8, abs=1)
    assert not [m for m in call.marks_received if m not in call.marks_echoed]
    conversation = await eventually(
        lambda: (found := conversation_of(alpha, call.call_sid)) and found.status == "ended" and found
    )
    assert conversation.end_reason == "idle_timeout"


async def test_a_number_that_remembers_callers_keys_them_by_a_hash_of_their_number(daphne_server, alpha, alpha_number):
    """Finding 5: memory of returning callers (keyed on caller ID, which can be spoofed) is opt-in per number."""

    def remember() -> None:
        number = PhoneNumber.objects.get(pk=alpha_number.pk)
        number.remember_callers = True
        number.save()  # through save(): the cached number is dropped

    await sync_to_async(remember)()

    call = await place_call(daphne_server)
    await eventually(lambda: turns_of(alpha, call.call_sid))
    await hang_up_and_wait(call)

    conversation = await eventually(lambda: conversation_of(alpha, call.call_sid))
    assert conversation.visitor_id.startswith("phone:") and CALLER not in conversation.visitor_id
