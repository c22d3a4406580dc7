"""Finding 13: a stream whose start arrives once this process began shutting down starts no session (as the
widget's socket), and its call ends rather than being cut mid-sentence by the shutdown."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django_tenants.utils import tenant_context

from conversations.models import Conversation
from telephony.consumers import TwilioMediaConsumer
from telephony.models import Call
from tests.telephony.conftest import ringing_call_token
from voice.protocol import CloseCode


def conversations(tenant) -> int:
    with tenant_context(tenant.organization):
        return Conversation.objects.count()


@pytest.mark.django_db(transaction=True)
async def test_a_stream_starting_during_shutdown_is_refused_and_its_call_ended(alpha, alpha_number):
    sid = "CA" + "7" * 32

    token = await sync_to_async(ringing_call_token)(alpha_number, sid)
    before = await sync_to_async(conversations)(alpha)
    communicator = WebsocketCommunicator(TwilioMediaConsumer.as_asgi(), "/ws/twilio/")
    # the socket opened before the shutdown began; its start arrives after
    with mock.patch("telephony.consumers.is_draining", side_effect=[False, True]):
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_to(text_data=json.dumps({"event": "connected", "protocol": "Call"}))
        start = {"accountSid": "AC1", "streamSid": "MZ1", "callSid": sid, "customParameters": {"token": token}}
        await communicator.send_to(text_data=json.dumps({"event": "start", "streamSid": "MZ1", "start": start}))
        closed = await communicator.receive_output(timeout=10)

    assert closed == {"type": "websocket.close", "code": int(CloseCode.SERVICE_RESTART)}
    await communicator.disconnect()
    call = await sync_to_async(Call.objects.get)(call_sid=sid)
    assert call.ended_at is not None
    assert await sync_to_async(conversations)(alpha) == before
