"""Helpers of the end-to-end voice tests: an assistant's settings for one test, a session opened through the widget."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from tenants.actions import do_rotate_widget_identity_secret
from tenants.queries import widget_identity_secret
from tests.voice.client import VoiceClient, request_session
from voice.models import Assistant
from voice.tokens import identity_hash


def _change_assistant(tenant, values: dict) -> dict:
    """Set the tenant's default assistant's fields; returns what they were."""
    with tenant_context(tenant.organization):
        assistant = Assistant.objects.get(is_default=True)
        before = {name: getattr(assistant, name) for name in values}
        Assistant.objects.filter(pk=assistant.pk).update(**values)
        return before


@contextlib.asynccontextmanager
async def assistant_settings(tenant, **changes) -> AsyncIterator[None]:
    before = await sync_to_async(_change_assistant)(tenant, changes)
    try:
        yield
    finally:
        await sync_to_async(_change_assistant)(tenant, before)


@contextlib.contextmanager
def assistant_settings_now(tenant, **changes) -> Iterator[None]:
    """``assistant_settings`` for synchronous tests and fixtures."""
    before = _change_assistant(tenant, changes)
    try:
        yield
    finally:
        _change_assistant(tenant, before)


def signed_in(tenant, visitor_id: str) -> dict[str, str]:
    """What a site's server puts on the page for its signed-in user: the id and its identity hash under the
    widget key's identity secret (made here when the key has none yet)."""
    key = tenant.widget_key
    secret = widget_identity_secret(key) or do_rotate_widget_identity_secret(key)
    return {"visitor_id": visitor_id, "visitor_hash": identity_hash(secret, visitor_id)}


async def open_session(
    server, tenant, visitor_id: str = "", *, text_only: bool = False
) -> tuple[VoiceClient, str, dict]:
    """A widget session; with ``visitor_id``, as a signed-in user the site vouches for (so it is remembered)."""
    key = await sync_to_async(lambda: tenant.widget_key.key)()
    identity = await sync_to_async(signed_in)(tenant, visitor_id) if visitor_id else {}
    status, body = await asyncio.to_thread(request_session, server.base_url, key, tenant.origin, **identity)
    assert status == 200, body
    client = await VoiceClient.connect(body["ws_url"], tenant.origin)
    created = await client.start(16000, text_only=text_only)
    await client.wait_for("response.done", response_id=1)  # the greeting
    return client, body["conversation_id"], created
