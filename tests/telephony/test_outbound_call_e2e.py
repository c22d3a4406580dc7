"""An outbound call end to end: the API asks Twilio (the fake REST API) to call; the fake Twilio answers
with the voice webhook, streams the call, reports its status; the assistant opens with the first message."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from conversations.models import Conversation
from telephony.models import Call
from tenants.actions import do_create_api_key
from tests.fakes.twilio import FakeTwilioCall, report_status, ring, stream_of
from tests.telephony.conftest import ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN, ALPHA_NUMBER
from tests.telephony.test_phone_calls_e2e import turns_of
from tests.waiting import eventually
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CALLEE = "+14155550123"
FIRST = "Hello, this is Alpha calling about your table for tonight."


def post_json(url: str, body: dict, secret: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


async def test_an_outbound_call_is_placed_answered_spoken_and_reported(daphne_server, twilio_rest, alpha, alpha_number):
    secret = await sync_to_async(
        lambda: do_create_api_key(alpha.organization, name="dialer", scopes=["calls:write"], created_by="test").secret
    )()
    await sync_to_async(WebhookEndpoint.objects.create)(
        organization=alpha.organization,
        url="https://hooks.alpha.example/aura",
        events=["call.started", "call.ended"],
        encrypted_secret="x",
        secret_hint="x",
    )

    # when an integration asks for a call
    status, body = await asyncio.to_thread(
        post_json,
        f"{daphne_server.base_url}/api/v1/calls/",
        {"from": ALPHA_NUMBER, "to": CALLEE, "first_message": FIRST, "metadata": {"booking": 12}},
        secret,
    )
    assert status == 201, body
    sid = body["sid"]
    (placed,) = [r for r in twilio_rest.requests if r.path.endswith("/Calls.json") and r.form["To"] == CALLEE]
    assert placed.form["Url"].startswith(f"{daphne_server.base_url}/telephony/twilio/voice?call=")

    # and Twilio reports the ringing, then the callee answers: Twilio fetches the TwiML and streams
    assert (
        await asyncio.to_thread(
            report_status,
            placed.form["StatusCallback"],
            auth_token=ALPHA_AUTH_TOKEN,
            account_sid=ALPHA_ACCOUNT_SID,
            call_sid=sid,
            status="ringing",
        )
        == 204
    )
    code, twiml, _ = await asyncio.to_thread(
        ring,
        daphne_server.base_url,
        auth_token=ALPHA_AUTH_TOKEN,
        to=CALLEE,
        caller=ALPHA_NUMBER,
        call_sid=sid,
        account_sid=ALPHA_ACCOUNT_SID,
        path=placed.form["Url"].removeprefix(daphne_server.base_url),  # Twilio fetches the Url it was given
        direction="outbound-api",
    )
    assert code == 200, twiml
    stream = stream_of(twiml)
    call = await FakeTwilioCall.connect(stream, call_sid=sid, account_sid=ALPHA_ACCOUNT_SID)
    await call.start(stream.parameters)

    # then the assistant opens with the first message, and the callee hears it
    turns = await eventually(lambda: turns_of(alpha, sid), timeout=20)
    assert turns[0].role == "assistant" and turns[0].text == FIRST
    await call.wait_heard(1)

    # when the callee hangs up and Twilio reports the end
    await call.hang_up()
    assert (
        await asyncio.to_thread(
            report_status,
            placed.form["StatusCallback"],
            auth_token=ALPHA_AUTH_TOKEN,
            account_sid=ALPHA_ACCOUNT_SID,
            call_sid=sid,
            status="completed",
            duration_s=9,
        )
        == 204
    )

    # then the call, its conversation and the webhooks tell the story
    def conversation() -> Conversation | None:
        with tenant_context(alpha.organization):
            return Conversation.objects.filter(call_sid=sid, status="ended").first()

    ended = await eventually(conversation)
    assert ended.channel == "phone" and ended.caller_number == CALLEE
    recorded = await eventually(lambda: (found := Call.objects.get(call_sid=sid)).duration_s == 9 and found)
    assert recorded.direction == "outbound" and recorded.status == "completed"
    assert str(recorded.conversation_id) == str(ended.pk)
    events = await sync_to_async(lambda: [json.loads(d.body) for d in WebhookDelivery.objects.order_by("created_at")])()
    assert [e["type"] for e in events] == ["call.started", "call.ended"]
    assert events[1]["data"]["call"]["metadata"] == {"booking": 12}
