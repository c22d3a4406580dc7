"""Issue 21, item 4: phone calls cannot run up a bill. Outbound destinations by country, premium and special
ranges refused; outbound calls take the plan's session slots; billed minutes are the platform's own
measurement; connecting a number tells nothing about other tenants' numbers; a refused stream does not use
up its call's token."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from billing.models import UsageEvent
from billing.sessions import _redis, slots_key
from telephony.actions import do_claim_call, do_end_call, do_start_inbound_call
from telephony.consumers import TwilioMediaConsumer
from telephony.models import Call, PhoneNumber
from tests.api.conftest import api_client, error_code
from tests.fakes.twilio import stream_of, twilio_signature
from tests.telephony.conftest import (
    ALPHA_ACCOUNT_SID,
    ALPHA_AUTH_TOKEN,
    ALPHA_NUMBER,
    BETA_NUMBER,
    CALLER,
    first_assistant,
    ringing_call_token,
)
from tests.telephony.test_calls_api import status_callback
from tests.telephony.test_phone_number_admin import URL, admin_of, form
from voice.protocol import CloseCode

US_CALLEE = "+14155550123"


@pytest.fixture
def caller_api(alpha, alpha_number, make_key, rest):
    return api_client(make_key(alpha, ["read", "calls:write"]))


@pytest.fixture
def free_slots(alpha) -> Iterator[None]:
    _redis().delete(slots_key(alpha.organization.pk))
    yield
    _redis().delete(slots_key(alpha.organization.pk))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("to", "why"),
    [
        ("+19005551234", "US premium rate (900)"),
        ("+12129761234", "NANP 976 exchange (premium information services)"),
        ("+15005550123", "NANP personal communications (500)"),
        ("+18765551234", "Jamaica: +1, but not the number's country"),
        ("+18095551234", "Dominican Republic: +1, but not the number's country"),
        ("+14165551234", "Canada: not listed for this number"),
        ("+449091234567", "UK premium rate"),
        ("+33123456789", "France: not listed for this number"),
        ("+1415555012", "too short to be a number"),
    ],
)
def test_outbound_calls_only_reach_the_numbers_countries_and_never_premium_ranges(caller_api, rest, to, why):
    response = caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": to}, format="json")

    assert response.status_code == 400, why
    assert "to" in response.json()["error"]["details"], why
    assert not rest.requests and not Call.objects.exists(), why


@pytest.mark.django_db
def test_the_numbers_own_country_is_the_default_and_its_list_widens_it(caller_api, alpha_number, rest, free_slots):
    assert caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": US_CALLEE}, format="json").status_code == 201
    assert (
        caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": "+18005551234"}, format="json").status_code
        == 201
    )

    alpha_number.call_countries = "US,CA,FR"
    alpha_number.save()
    for to in ("+14165551234", "+33123456789"):
        assert caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": to}, format="json").status_code == 201, to
    for to in ("+18765551234", "+19005551234", "+33891234567"):  # listed countries keep refusing premium ranges
        refused = caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": to}, format="json")
        assert refused.status_code == 400, to


@pytest.mark.django_db
def test_outbound_calls_take_the_plans_concurrent_session_slots(alpha, caller_api, rest, free_slots):
    from tests.billing.conftest import make_plan, subscribe

    subscribe(alpha.organization, make_plan(max_concurrent_sessions=2), at=timezone.now() - timedelta(days=1))

    answers = [
        caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": US_CALLEE}, format="json") for _ in range(4)
    ]

    assert [a.status_code for a in answers] == [201, 201, 429, 429]
    assert error_code(answers[2]) == "concurrent_limit"
    assert Call.objects.count() == 2 and len(rest.requests) == 2
    # the callee answers: the call is connected on its own slot (the plan's 2 are both taken, by these calls)
    assert stream_of(_answered(Call.objects.get(call_sid=answers[1].json()["sid"]))) is not None
    # the callee does not answer: the call ends and its slot is free again
    assert status_callback(answers[0].json()["sid"], "no-answer").status_code == 204
    again = caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": US_CALLEE}, format="json")
    assert again.status_code == 201


@pytest.mark.django_db
def test_a_call_twilio_refused_gives_its_slot_back(alpha, caller_api, rest, free_slots):
    from tests.billing.conftest import make_plan, subscribe

    subscribe(alpha.organization, make_plan(max_concurrent_sessions=1), at=timezone.now() - timedelta(days=1))
    rest.refuse_calls = True
    assert caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": US_CALLEE}, format="json").status_code == 502
    rest.refuse_calls = False
    assert caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": US_CALLEE}, format="json").status_code == 201


def _answered(call: Call) -> str:
    """Twilio's voice webhook for a placed call the callee answered: the TwiML."""
    path = f"/telephony/twilio/voice?call={call.pk}"
    params = {
        "AccountSid": ALPHA_ACCOUNT_SID,
        "CallSid": call.call_sid,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "From": ALPHA_NUMBER,
        "To": US_CALLEE,
    }
    response = Client().post(
        path,
        urllib.parse.urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_HOST="localhost",
        HTTP_X_TWILIO_SIGNATURE=twilio_signature(ALPHA_AUTH_TOKEN, f"https://aura.example{path}", params),
    )
    assert response.status_code == 200
    return response.content.decode()


def _streamed_call(alpha, number: PhoneNumber, sid: str, *, seconds: int, end: bool = True) -> Call:
    """A call answered and streamed for ``seconds`` as this platform measured it."""
    start = timezone.now() - timedelta(seconds=seconds)
    with mock.patch("django.utils.timezone.now", return_value=start):
        do_start_inbound_call(number=number, call_sid=sid, caller=CALLER)
        do_claim_call(
            call_sid=sid,
            organization_id=alpha.organization.pk,
            phone_number_id=number.pk,
            conversation_id="0b5e7c2e-4c57-4d0b-9c3f-3f0c7a6f0a11",
        )
    if end:
        do_end_call(call_sid=sid)
    return Call.objects.get(call_sid=sid)


def _billed(sid: str) -> list[int]:
    return [int(e.quantity) for e in UsageEvent.objects.filter(idempotency_key__startswith=f"call:{sid}:")]


@pytest.mark.django_db
def test_a_signed_status_callback_cannot_shorten_the_measured_duration(alpha, alpha_number, rest):
    sid = "CA" + "d1" * 16
    call = _streamed_call(alpha, alpha_number, sid, seconds=300)
    assert call.duration_s == 300 and _billed(sid) == [300]

    assert status_callback(sid, "completed", CallDuration="1").status_code == 204

    assert Call.objects.get(call_sid=sid).duration_s == 300
    assert _billed(sid) == [300]


@pytest.mark.django_db
def test_an_early_completed_callback_does_not_replace_the_streams_measurement(alpha, alpha_number, rest):
    sid = "CA" + "d2" * 16
    _streamed_call(alpha, alpha_number, sid, seconds=240, end=False)

    assert status_callback(sid, "completed", CallDuration="1").status_code == 204  # while the stream is live
    do_end_call(call_sid=sid)  # then the stream ends, 240 s after it began

    assert Call.objects.get(call_sid=sid).duration_s == 240
    assert _billed(sid) == [240]


@pytest.mark.django_db
def test_twilios_longer_duration_is_billed(alpha, alpha_number, rest):
    """After a transfer the call goes on at Twilio without a stream: its report may only lengthen the call."""
    sid = "CA" + "d3" * 16
    _streamed_call(alpha, alpha_number, sid, seconds=60)

    assert status_callback(sid, "completed", CallDuration="900").status_code == 204

    assert Call.objects.get(call_sid=sid).duration_s == 900 and _billed(sid) == [900]


@pytest.mark.django_db
def test_connecting_a_number_with_made_up_credentials_tells_nothing_about_other_tenants(alpha, beta, beta_number, rest):
    rest.credentials[ALPHA_ACCOUNT_SID] = "the-real-token-of-alpha-account-0"
    client = admin_of(alpha)
    pages = {
        number: client.post(f"{URL}add/", form(first_assistant(alpha), number=number, auth_token="made-up")).content
        for number in ("+14155550111", BETA_NUMBER)  # nobody's, and beta's (connected on the platform's account)
    }

    free, taken = (p.decode() for p in pages.values())
    assert "Twilio refused these credentials" in free
    assert "already" not in taken
    assert _errors(free) == _errors(taken).replace(BETA_NUMBER, "+14155550111")
    assert list(PhoneNumber.objects.values_list("number", flat=True)) == [BETA_NUMBER]


def _errors(page: str) -> str:
    import re

    return "\n".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>.*?</ul>', page, flags=re.S))


def _start_message(sid: str, token: str) -> str:
    start = {"accountSid": ALPHA_ACCOUNT_SID, "streamSid": "MZ1", "callSid": sid, "customParameters": {"token": token}}
    return json.dumps({"event": "start", "streamSid": "MZ1", "start": start})


@pytest.mark.django_db(transaction=True)
async def test_a_stream_refused_for_a_foreign_call_sid_leaves_the_token_to_the_real_stream(alpha, alpha_number):
    sid = "CA" + "e1" * 16

    token = await sync_to_async(ringing_call_token)(alpha_number, sid)
    intruder = WebsocketCommunicator(TwilioMediaConsumer.as_asgi(), "/ws/twilio/")
    assert (await intruder.connect())[0]
    await intruder.send_to(text_data=_start_message("CA" + "f0" * 16, token))
    assert await intruder.receive_output(timeout=10) == {
        "type": "websocket.close",
        "code": int(CloseCode.INVALID_TOKEN),
    }
    await intruder.disconnect()

    genuine = WebsocketCommunicator(TwilioMediaConsumer.as_asgi(), "/ws/twilio/")
    assert (await genuine.connect())[0]
    await genuine.send_to(text_data=_start_message(sid, token))
    for _ in range(100):  # the genuine stream takes its call and its session starts
        call = await sync_to_async(Call.objects.get)(call_sid=sid)
        if call.conversation_id is not None:
            break
        await asyncio.sleep(0.1)
    assert call.conversation_id is not None and call.ended_at is None
    await genuine.send_to(text_data=json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": sid}}))
    while (output := await genuine.receive_output(timeout=10))["type"] != "websocket.close":
        pass
    assert output["code"] == int(CloseCode.NORMAL)  # ended by the caller, not refused (4003)
    await genuine.disconnect()


@pytest.mark.django_db
def test_the_admin_checks_call_countries_and_refuses_premium_transfer_numbers(alpha, rest):
    rest.own("+14155550111", ALPHA_ACCOUNT_SID)
    client = admin_of(alpha)
    assistant = first_assistant(alpha)

    unknown = client.post(f"{URL}add/", form(assistant, call_countries="US, ZZ")).content.decode()
    assert "Not ISO 3166 country codes: ZZ." in unknown
    premium = client.post(f"{URL}add/", form(assistant, transfer_to="+19005551234")).content.decode()
    assert "premium-rate and special numbers" in premium
    caribbean = client.post(f"{URL}add/", form(assistant, transfer_to="+18765551234")).content.decode()
    assert "cannot go to this country" in caribbean
    assert not PhoneNumber.objects.exists()

    added = client.post(f"{URL}add/", form(assistant, call_countries="us, ca", transfer_to="+14165551234"))
    assert added.status_code == 302
    assert PhoneNumber.objects.get().call_countries == "US, CA"
