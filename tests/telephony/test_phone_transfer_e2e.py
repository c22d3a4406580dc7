"""Twilio's REST API during a call. The hand-off tool: the hand-off is recorded, the caller hears "putting you
through", then the call is moved to the organization's number with ``<Dial>``. Recording, when the number asks."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from conversations.models import Conversation, Handoff
from telephony.models import Call, PhoneNumber
from tests.fakes.twilio import phone_speech, report_status, ulaw_silence
from tests.servers import PLATFORM_TWILIO_ACCOUNT_SID, PLATFORM_TWILIO_AUTH_TOKEN
from tests.telephony.conftest import ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN, BETA_NUMBER
from tests.telephony.test_phone_calls_e2e import hang_up_and_wait, place_call, turns_of
from tests.voice.sessions import assistant_settings
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESK = "+14155550999"


async def test_asking_for_a_human_puts_the_caller_through_to_the_desk(daphne_server, twilio_rest, alpha, alpha_number):
    def set_desk() -> None:
        number = PhoneNumber.objects.get(pk=alpha_number.pk)
        number.transfer_to = DESK
        number.save()  # through save(): the cached number is dropped

    await sync_to_async(set_desk)()
    async with assistant_settings(alpha, tools=["handoff"]):
        # given a call past its greeting
        call = await place_call(daphne_server)
        await eventually(lambda: turns_of(alpha, call.call_sid))
        await call.wait_heard(1)

        # when the caller asks for a person
        await call.speak(phone_speech("phone_human.wav") + ulaw_silence(300))

        # then the reply says so, is heard to its end, and only then is the call moved to the desk
        await eventually(lambda: twilio_rest.calls_to(call.call_sid), timeout=30)
        assert call.played.get(2, 0) == pytest.approx(call.audio.get(2, -1) / 8, abs=1), "heard to its end first"
        (update,) = twilio_rest.calls_to(call.call_sid)
        assert (update.account_sid, update.auth_token) == (ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN)
        dial = ET.fromstring(update.form["Twiml"]).find("Dial")
        assert dial is not None and dial.text == DESK
        # Twilio left the stream (stop, then closed it) before it answered the update: a transfer, not a hang-up
        assert await call.wait_closed() == 1000  # the stream ends; Twilio goes on with <Dial>

    def stored() -> tuple[Conversation, Handoff | None]:
        with tenant_context(alpha.organization):
            conversation = Conversation.objects.get(call_sid=call.call_sid)
            return conversation, Handoff.objects.filter(conversation=conversation).first()

    conversation, handoff = await eventually(lambda: (found := stored())[0].status == "ended" and found)
    assert conversation.end_reason == "transferred"
    assert handoff is not None and "human" in handoff.reason
    turns = await sync_to_async(turns_of)(alpha, call.call_sid)
    assert "putting you through" in turns[2].text.lower() and turns[2].heard_text == turns[2].text

    # and the call goes on with the desk: it ends (call.ended) when Twilio reports it completed, not before
    row = await sync_to_async(Call.objects.get)(call_sid=call.call_sid)
    assert row.ended_at is None and row.status == "in-progress"
    code = await asyncio.to_thread(
        report_status,
        f"{daphne_server.base_url}/telephony/twilio/status",
        auth_token=ALPHA_AUTH_TOKEN,
        account_sid=ALPHA_ACCOUNT_SID,
        call_sid=call.call_sid,
        status="completed",
        duration_s=95,
    )
    assert code == 204
    row = await sync_to_async(Call.objects.get)(call_sid=call.call_sid)
    assert (row.status, row.duration_s) == ("completed", 95) and row.ended_at is not None


async def test_a_number_that_records_asks_twilio_to_record_and_others_do_not(
    daphne_server, twilio_rest, alpha, alpha_number, beta, beta_number
):
    def record_alpha() -> None:
        number = PhoneNumber.objects.get(pk=alpha_number.pk)
        number.record_calls = True
        number.save()

    await sync_to_async(record_alpha)()
    recorded = await place_call(daphne_server)
    await eventually(lambda: twilio_rest.recordings_of(recorded.call_sid))
    (request,) = twilio_rest.recordings_of(recorded.call_sid)
    assert (request.account_sid, request.auth_token) == (ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN)

    silent = await place_call(
        daphne_server, to=BETA_NUMBER, token=PLATFORM_TWILIO_AUTH_TOKEN, account_sid=PLATFORM_TWILIO_ACCOUNT_SID
    )  # off by default
    await silent.wait_until(lambda: silent.audio.get(1), what="greeting")
    assert not twilio_rest.recordings_of(silent.call_sid)
    await hang_up_and_wait(recorded)
    await hang_up_and_wait(silent)
