"""Bad input on the phone: refused with the documented close code or counted error, nothing created that
should not be, nothing stored lost, other calls unharmed."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from conversations.models import Conversation
from telephony.actions import do_end_stale_calls
from telephony.models import Call, PhoneNumber
from tests.fakes.twilio import FakeTwilioCall, StreamInstruction, new_sid, ring, stream_of
from tests.servers import PLATFORM_TWILIO_ACCOUNT_SID, PLATFORM_TWILIO_AUTH_TOKEN
from tests.telephony.conftest import ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN, ALPHA_NUMBER, BETA_NUMBER, CALLER
from tests.telephony.test_phone_calls_e2e import place_call, turns_of
from tests.waiting import eventually
from voice import tokens

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def conversation_count(tenant) -> int:
    with tenant_context(tenant.organization):
        return Conversation.objects.count()


async def answered(
    server, to: str = ALPHA_NUMBER, token: str = ALPHA_AUTH_TOKEN, account_sid: str = ALPHA_ACCOUNT_SID
) -> tuple[StreamInstruction, str]:
    status, twiml, call_sid = await asyncio.to_thread(
        ring, server.base_url, auth_token=token, to=to, caller=CALLER, account_sid=account_sid
    )
    assert status == 200, twiml
    return stream_of(twiml), call_sid


async def refused_with(server, parameters: dict[str, str], call_sid: str, *, first: dict | None = None) -> int | None:
    call = await FakeTwilioCall.connect(
        StreamInstruction(url=f"{server.ws_base}/ws/twilio/", parameters={}), call_sid=call_sid
    )
    if first is not None:
        await call.send_raw(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await call.send_raw(json.dumps(first))
    else:
        await call.start(parameters)
    code = await call.wait_closed()
    assert not call.audio, "nothing was spoken on a refused stream"
    return code


async def call_ended(call_sid: str) -> None:
    """Until the server stored the call's end: its last write, which must not race the test's flush."""
    await eventually(lambda: Call.objects.filter(call_sid=call_sid, ended_at__isnull=False).exists())


def voice_errors(server) -> dict[str, float]:
    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {m[1]: float(m[2]) for m in re.finditer(r'aura_voice_errors_total\{code="([a-z_]+)"\} ([0-9.e+]+)', text)}


async def test_refused_stream_tokens_close_with_their_code_and_create_nothing(daphne_server, alpha, alpha_number):
    before = await sync_to_async(conversation_count)(alpha) + 1  # + the one legitimate call below
    await sync_to_async(Call.objects.filter(organization=alpha.organization).delete)()
    answered_sids: list[str] = []

    assert await refused_with(daphne_server, {}, new_sid("CA")) == 4001  # no token
    assert await refused_with(daphne_server, {"token": "forged.token:value"}, new_sid("CA")) == 4001
    stream, call_sid = await answered(daphne_server)
    answered_sids.append(call_sid)
    assert await refused_with(daphne_server, stream.parameters, new_sid("CA")) == 4001  # another call's token

    stream, call_sid = await answered(daphne_server)
    answered_sids.append(call_sid)
    legitimate = await FakeTwilioCall.connect(stream, call_sid=call_sid)
    await legitimate.start(stream.parameters)
    await legitimate.wait_until(lambda: legitimate.audio.get(1), what="greeting")
    await legitimate.hang_up()
    assert await refused_with(daphne_server, stream.parameters, call_sid) == 4003  # replayed

    with mock.patch("django.core.signing.time.time", return_value=time.time() - 120):
        old, _ = tokens.issue_call_token(
            phone_number_id=alpha_number.pk,
            organization_id=alpha.organization.pk,
            assistant_id=alpha_number.assistant_id,
            call_sid="CA-old",
            caller=CALLER,
        )
    assert await refused_with(daphne_server, {"token": old}, "CA-old") == 4002  # expired

    stream, call_sid = await answered(daphne_server)
    answered_sids.append(call_sid)
    await sync_to_async(PhoneNumber.objects.filter(pk=alpha_number.pk).update)(is_active=False)
    assert await refused_with(daphne_server, stream.parameters, call_sid) == 4005  # number turned off since

    media_first = {"event": "media", "streamSid": "MZ1", "media": {"track": "inbound", "payload": "//8="}}
    assert await refused_with(daphne_server, {}, new_sid("CA"), first=media_first) == 4400  # media before start
    dtmf_first = {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "1"}}
    assert await refused_with(daphne_server, {}, new_sid("CA"), first=dtmf_first) == 4400
    assert await refused_with(daphne_server, {}, new_sid("CA"), first={"event": 5}) == 4400

    await asyncio.sleep(0.5)  # the legitimate call's end is being stored
    assert await sync_to_async(conversation_count)(alpha) == before

    # no refused stream made a call row; the calls the webhook started are ended, or (the one whose
    # stream never came: its token was used on another call) left to the stale-call job, which ends it
    def open_calls() -> list[str]:
        return list(Call.objects.filter(ended_at__isnull=True).values_list("call_sid", flat=True))

    assert set(await sync_to_async(lambda: set(Call.objects.values_list("call_sid", flat=True)))()) <= set(
        answered_sids
    )
    assert len(await sync_to_async(open_calls)()) == 1
    later = timezone.now() + timedelta(seconds=settings.TELEPHONY_UNSTREAMED_CALL_S + 1)
    await sync_to_async(do_end_stale_calls)(now=later)
    assert await sync_to_async(open_calls)() == []


async def test_a_stream_cannot_take_another_organizations_call_or_one_already_streaming(
    daphne_server, alpha, alpha_number, beta, beta_number
):
    """Finding 4: a token, however it was obtained, only opens the stream of a call of its own organization
    and number that has no conversation yet; the live call is unaffected."""
    beta_conversations = await sync_to_async(conversation_count)(beta)
    call = await place_call(daphne_server)
    await call.wait_until(lambda: call.audio.get(1), what="greeting")

    def token_for(number, organization) -> str:
        token, _ = tokens.issue_call_token(
            phone_number_id=number.pk,
            organization_id=organization.pk,
            assistant_id=number.assistant_id,
            call_sid=call.call_sid,
            caller=CALLER,
        )
        return token

    beta_token = await sync_to_async(token_for)(beta_number, beta.organization)
    assert await refused_with(daphne_server, {"token": beta_token}, call.call_sid) == 4003
    again = await sync_to_async(token_for)(alpha_number, alpha.organization)
    assert await refused_with(daphne_server, {"token": again}, call.call_sid) == 4003  # it streams already

    stored = await sync_to_async(Call.objects.get)(call_sid=call.call_sid)
    assert stored.organization_id == alpha.organization.pk and stored.ended_at is None
    assert await sync_to_async(conversation_count)(beta) == beta_conversations
    await call.press("5")
    await eventually(lambda: len(turns_of(alpha, call.call_sid)) >= 3, timeout=30)  # the real call goes on
    await call.hang_up()
    await call_ended(call.call_sid)


async def test_a_refused_stream_ends_its_call(daphne_server, alpha, alpha_number):
    """Finding 6: the webhook started the call (and fired call.started); a stream refused after its token
    was redeemed ends it, rather than leaving it in progress forever."""
    stream, call_sid = await answered(daphne_server)
    await sync_to_async(PhoneNumber.objects.filter(pk=alpha_number.pk).update)(is_active=False)

    assert await refused_with(daphne_server, stream.parameters, call_sid) == 4005

    call = await eventually(lambda: (c := Call.objects.get(call_sid=call_sid)).ended_at is not None and c)
    assert call.status == "failed" and call.conversation_id is None


async def test_malformed_messages_are_counted_and_the_call_goes_on(daphne_server, alpha, alpha_number):
    counted_before = await asyncio.to_thread(voice_errors, daphne_server)
    call = await place_call(daphne_server)
    await eventually(lambda: turns_of(alpha, call.call_sid))
    await call.wait_heard(1)

    await call.send_raw("{not json")
    await call.send_raw("[1, 2, 3]")
    await call.send_raw(json.dumps({"event": "teleport"}))
    await call.send_raw(json.dumps({"event": "media", "media": {"payload": "not base64!"}}))
    await call.send_raw(json.dumps(call.media_message(b"\xff" * 20_000)))  # 2.5 s in one message
    await call.send_raw(json.dumps({"event": "dtmf", "dtmf": {"digit": "9!"}}))
    await call.start({"token": "again"}, connected=False)  # a second start
    await call.send_raw(b"\x00\x01binary")

    await call.press("5")
    turns = await eventually(lambda: len(found := turns_of(alpha, call.call_sid)) >= 3 and found, timeout=30)
    assert turns[1].text == "The caller pressed 5 on the phone's keypad." and turns[2].role == "assistant"
    counted = await asyncio.to_thread(voice_errors, daphne_server)
    for code, times in {
        "invalid_json": 3,
        "unknown_event": 1,
        "invalid_audio": 1,
        "audio_too_large": 1,
        "invalid_event": 1,
        "already_started": 1,
    }.items():
        assert counted.get(code, 0) - counted_before.get(code, 0) >= times, code
    await call.hang_up()
    await call_ended(call.call_sid)


async def test_marks_and_connected_count_against_the_limits_before_and_after_start(daphne_server, alpha, alpha_number):
    """Finding 9: before ``start`` only one ``connected`` may come (then ``start``); after it, marks and
    ``connected`` count against the session's flood limit like media."""
    connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert await refused_with(daphne_server, {}, new_sid("CA"), first=connected) == 4400  # a second connected
    mark_first = {"event": "mark", "streamSid": "MZ1", "mark": {"name": "r1:20.0"}}
    assert await refused_with(daphne_server, {}, new_sid("CA"), first=mark_first) == 4400

    flooder = await place_call(daphne_server)
    await eventually(lambda: turns_of(alpha, flooder.call_sid))
    mark = json.dumps({"event": "mark", "streamSid": flooder.stream_sid, "mark": {"name": "r999:1.0"}})
    for _ in range(2000):
        await flooder.send_raw(mark)
    assert await flooder.wait_closed() == 4400
    await call_ended(flooder.call_sid)


async def test_a_flood_is_cut_off_without_harming_other_calls(daphne_server, alpha, alpha_number, beta, beta_number):
    flooder = await place_call(daphne_server)
    await eventually(lambda: turns_of(alpha, flooder.call_sid))
    stream, call_sid = await answered(
        daphne_server, to=BETA_NUMBER, token=PLATFORM_TWILIO_AUTH_TOKEN, account_sid=PLATFORM_TWILIO_ACCOUNT_SID
    )
    bystander = await FakeTwilioCall.connect(stream, call_sid=call_sid)
    await bystander.start(stream.parameters)

    frame = json.dumps(flooder.media_message(b"\xff" * 160))
    for _ in range(2000):
        await flooder.send_raw(frame)
    code = await flooder.wait_closed()
    await eventually(lambda: turns_of(beta, call_sid))
    await bystander.wait_heard(1)
    await bystander.press("1")

    assert code == 4400
    turns = await eventually(lambda: len(found := turns_of(beta, call_sid)) >= 3 and found, timeout=30)
    assert turns[1].input_mode == "dtmf" and turns[2].role == "assistant"

    def ended() -> Conversation | None:
        with tenant_context(alpha.organization):
            found = Conversation.objects.filter(call_sid=flooder.call_sid, status="ended").first()
            return found

    conversation = await eventually(ended)
    assert conversation.end_reason == "protocol_abuse"
    assert [t.role for t in await sync_to_async(turns_of)(alpha, flooder.call_sid)][:1] == ["assistant"]
    await bystander.hang_up()
    await call_ended(flooder.call_sid)
    await call_ended(call_sid)
