"""Every bad input a voice session can meet: refused clearly, nothing lost, other sessions unharmed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from unittest import mock

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.core import signing
from django_tenants.utils import tenant_context

from conversations.models import Conversation, Turn
from tenants.models import WidgetKey
from tests.voice.client import VoiceClient, request_session
from voice import tokens

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _conversation_count(tenant) -> int:
    with tenant_context(tenant.organization):
        return Conversation.objects.count()


async def _session(server, tenant) -> dict:
    key = await sync_to_async(lambda: tenant.widget_key.key)()
    status, body = await asyncio.to_thread(request_session, server.base_url, key, tenant.origin)
    assert status == 200, body
    return body


async def _refused(ws_url: str, origin: str) -> int | None:
    client = await VoiceClient.connect(ws_url, origin)
    with contextlib.suppress(websockets.ConnectionClosed):  # the server may have closed already
        await client.send({"type": "session.start", "sample_rate": 16000})
    code = await client.wait_closed()
    assert not client.of_type("session.created")
    return code


async def test_refused_tokens_close_with_their_code_and_create_nothing(daphne_server, alpha, beta):
    before = await sync_to_async(_conversation_count)(alpha) + 1  # + the one legitimate session below
    base = f"{daphne_server.ws_base}/ws/voice/"

    assert await _refused(base, alpha.origin) == 4001  # no token
    assert await _refused(base + "?token=forged.token:value", alpha.origin) == 4001

    body = await _session(daphne_server, alpha)
    assert await _refused(body["ws_url"], "https://evil.example") == 4004  # wrong origin (does not spend it)
    legitimate = await VoiceClient.connect(body["ws_url"], alpha.origin)
    await legitimate.start(16000, text_only=True)
    await legitimate.close()
    assert await _refused(body["ws_url"], alpha.origin) == 4003  # reused

    key = await sync_to_async(lambda: alpha.widget_key)()
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 120):
        old_token, _ = tokens.issue_token(key, origin=alpha.origin)
    assert await _refused(f"{base}?token={old_token}", alpha.origin) == 4002  # expired

    body = await _session(daphne_server, alpha)
    await sync_to_async(WidgetKey.objects.filter(pk=key.pk).update)(is_active=False)
    await sync_to_async(lambda: WidgetKey(pk=key.pk, key=key.key).save(update_fields=[]))()  # drop cached key
    assert await _refused(body["ws_url"], alpha.origin) == 4005  # key turned off since the token was issued

    assert await sync_to_async(_conversation_count)(alpha) == before


async def test_malformed_messages_get_error_events_and_the_session_goes_on(daphne_server, alpha):
    body = await _session(daphne_server, alpha)
    client = await VoiceClient.connect(body["ws_url"], alpha.origin)

    await client.send_raw(b"\x00\x01" * 160)  # audio before session.start
    await client.send({"type": "session.start", "sample_rate": 11025})
    await client.send_raw("{not json")
    await client.send_raw(json.dumps([1, 2, 3]))
    await client.send({"type": "session.teleport"})
    await client.send({"type": "input.text", "text": "too early"})
    codes = [
        (await client.wait_for("error", code=code))["code"]
        for code in ("not_started", "unsupported_sample_rate", "invalid_json", "unknown_event")
    ]
    assert codes == ["not_started", "unsupported_sample_rate", "invalid_json", "unknown_event"]
    await client.wait_for("error", message="send session.start first")  # the early input.text

    await client.start(16000)
    await client.send({"type": "session.start", "sample_rate": 16000})
    await client.send_raw(b"\x00" * 321)
    await client.send_raw(b"\x00" * (64 * 1024 + 2))
    await client.send({"type": "input.text", "text": ""})
    await client.send({"type": "response.played", "response_id": "one", "played_ms": 5})
    for code in ("already_started", "invalid_audio", "audio_too_large", "invalid_event"):
        await client.wait_for("error", code=code)

    await client.send({"type": "input.text", "text": "What are your opening hours?"})
    done = await client.wait_for("response.done", response_id=2)
    assert "open" in done["text"].lower()
    await client.close()


async def test_a_flood_is_cut_off_without_harming_other_sessions_or_stored_turns(daphne_server, alpha, beta):
    flooder_body = await _session(daphne_server, alpha)
    flooder = await VoiceClient.connect(flooder_body["ws_url"], alpha.origin)
    await flooder.start(16000)
    await flooder.send({"type": "input.text", "text": "hello"})
    await flooder.wait_for("response.done", response_id=2)

    bystander = await VoiceClient.connect((await _session(daphne_server, beta))["ws_url"], beta.origin)
    await bystander.start(16000, text_only=True)

    for _ in range(2000):
        await flooder.send_raw(b"\x00\x00" * 160)
    code = await flooder.wait_closed()
    await bystander.send({"type": "input.text", "text": "Are you open on Sunday?"})
    done = await bystander.wait_for("response.done", response_id=2)

    assert flooder.first("error", code="rate_limited") is not None
    assert code == 4400
    # Answered (a new organization's assistant has the business-hours tool on, so the answer is the hours).
    assert "open" in done["text"].lower()

    def stored():
        with tenant_context(alpha.organization):
            conversation = Conversation.objects.get(pk=flooder_body["conversation_id"])
            return conversation, list(Turn.objects.filter(conversation=conversation).values_list("role", flat=True))

    deadline = time.monotonic() + 10
    while True:
        conversation, roles = await sync_to_async(stored)()
        if conversation.status == "ended" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert conversation.end_reason == "protocol_abuse"
    assert roles[:3] == ["assistant", "visitor", "assistant"]
    await bystander.close()


def test_tokens_are_signed_so_a_tampered_payload_is_refused(alpha):
    key = alpha.widget_key
    token, _ = tokens.issue_token(key, origin=alpha.origin)
    payload = signing.TimestampSigner(salt="aura.voice.session.v1").unsign_object(token)
    payload["t"] = 999
    forged = signing.TimestampSigner(salt="another-salt").sign_object(payload)

    with pytest.raises(tokens.TokenError) as refused:
        tokens.redeem_token(forged, origin=alpha.origin)
    assert refused.value.close_code == 4001
