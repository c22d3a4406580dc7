"""Helpers of the end-to-end voice tests: an assistant's settings for one test, a session opened through the widget."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from tests.voice.client import VoiceClient, request_session
from voice.models import Assistant


@contextlib.asynccontextmanager
async def assistant_settings(tenant, **changes) -> AsyncIterator[None]:
    def change(values: dict) -> dict:
        with tenant_context(tenant.organization):
            assistant = Assistant.objects.get(is_default=True)
            before = {name: getattr(assistant, name) for name in values}
            Assistant.objects.filter(pk=assistant.pk).update(**values)
            return before

    before = await sync_to_async(change)(changes)
    try:
        yield
    finally:
        await sync_to_async(change)(before)


async def open_session(
    server, tenant, visitor_id: str = "", *, text_only: bool = False
) -> tuple[VoiceClient, str, dict]:
    key = await sync_to_async(lambda: tenant.widget_key.key)()
    status, body = await asyncio.to_thread(request_session, server.base_url, key, tenant.origin, visitor_id)
    assert status == 200, body
    client = await VoiceClient.connect(body["ws_url"], tenant.origin)
    created = await client.start(16000, text_only=text_only, **({"visitor_id": visitor_id} if visitor_id else {}))
    await client.wait_for("response.done", response_id=1)  # the greeting
    return client, body["conversation_id"], created
