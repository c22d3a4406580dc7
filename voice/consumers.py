"""The voice WebSocket: authenticates the token, then hands every frame to the VoiceSession."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from asgiref.typing import ASGIReceiveCallable as Receive
from asgiref.typing import ASGISendCallable as Send
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from billing.metrics import QUOTA_REFUSALS
from billing.sessions import SessionRefusedError, open_session
from conversations.models import EndReason
from core import log_context
from core.shutdown import is_draining, on_drain
from tenants.queries import widget_key
from tenants.tenancy import run_in_public, run_in_tenant
from voice.metrics import SESSIONS_ACTIVE, VOICE_ERRORS
from voice.protocol import CloseCode
from voice.providers.registry import providers_for
from voice.queries import assistant_snapshot
from voice.recorder import ConversationRecorder
from voice.session import VoiceSession
from voice.tokens import TokenError, redeem_token

logger = logging.getLogger(__name__)


class _DrainingError(Exception):
    """Shutdown began while a connection was being set up."""


_live: set[VoiceConsumer] = set()  # this process's open sessions, for graceful shutdown


async def end_live_sessions(deadline: float) -> None:
    """Shutdown: every live session stores what it holds and tells its widget to reconnect (4012)."""
    sessions = [consumer.session for consumer in list(_live) if consumer.session is not None]
    logger.info("ending %d live voice session(s) for shutdown", len(sessions))
    consumers = list(_live)
    ends = [session.end(EndReason.SERVER_SHUTDOWN, CloseCode.SERVICE_RESTART) for session in sessions]
    for session, result in zip(sessions, await asyncio.gather(*ends, return_exceptions=True), strict=True):
        if isinstance(result, BaseException):
            logger.error("session %s did not end cleanly at shutdown", session.conversation_id, exc_info=result)
    # The close frames are only queued: wait for each client's close handshake (its disconnect
    # reaches the consumer), or the reactor stops first and the widget sees 1006 instead of 4012.
    waits = [asyncio.ensure_future(consumer.finished.wait()) for consumer in consumers]
    if waits:
        _, pending = await asyncio.wait(waits, timeout=max(0.0, deadline - time.monotonic()))
        for waiter in pending:
            waiter.cancel()


on_drain(end_live_sessions)


def live_session_opened(consumer: VoiceConsumer) -> None:
    """A consumer's session is set up: it counts as live, and is ended at shutdown."""
    _live.add(consumer)
    SESSIONS_ACTIVE.inc()


class VoiceConsumer(AsyncWebsocketConsumer):
    session: VoiceSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """A lean receive loop in place of Channels' generic one, measured with bench.voice.

        At 50 audio frames a second per session, Channels' loop costs more than the whole voice
        pipeline: per message it creates a task and waits on it with ``asyncio.wait``, and closes
        stale database connections through a thread hop (a quarter of the server's CPU on its own).
        This consumer never uses the ORM on the event loop's thread (``run_in_tenant`` manages its
        own connections) and joins no channel-layer group, so it reads messages directly.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        self.finished = asyncio.Event()
        try:
            while True:
                message = await receive()
                handler = getattr(self, get_handler_name(message), None)
                if handler is None:
                    raise ValueError(f"No handler for message type {message['type']}")
                await handler(message)
        except StopConsumer:
            pass
        except Exception:
            logger.exception("voice session crashed")
            if self.session is not None:  # store what was said, end the conversation, tell the client
                await self.session.end(EndReason.ERROR, CloseCode.INTERNAL_ERROR)
            raise
        finally:
            if self in _live:
                _live.discard(self)
                SESSIONS_ACTIVE.dec()
            self.finished.set()

    async def connect(self) -> None:
        await self.accept()  # accept first: close codes reach the client only on an open socket
        if is_draining():  # this process is shutting down: the widget retries, and lands on another
            await self.close(code=int(CloseCode.SERVICE_RESTART))
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        headers = dict(self.scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin-1")
        try:
            grant = await database_sync_to_async(redeem_token)(query.get("token", [""])[0], origin=origin)
            key = await run_in_public(widget_key, grant.widget_key)
            if key is None or key.organization_id != grant.organization_id or not key.allows_origin(origin):
                raise TokenError(CloseCode.UNKNOWN_KEY, "widget key unknown, inactive or no longer allowed here")
            tenant = key.organization
            assistant = await run_in_tenant(tenant, assistant_snapshot, grant.assistant_id)
            if assistant is None:
                raise TokenError(CloseCode.UNKNOWN_KEY, "the key's assistant no longer exists")
        except TokenError as refused:
            logger.info("voice session refused (%s): %s", int(refused.close_code), refused)
            await self.close(code=int(refused.close_code))
            return
        try:  # the plan's hard cap, and a concurrent-session slot taken atomically
            quota = await open_session(tenant)
        except SessionRefusedError as refused:
            logger.info("voice session refused for %s: %s", tenant.slug, refused.code)
            QUOTA_REFUSALS.labels(refused.code).inc()
            await self.send_event(refused.as_event())
            await self.close(code=int(CloseCode.QUOTA))
            return
        try:
            if is_draining():  # shutdown began while this connection was being checked
                raise _DrainingError
            self.session = VoiceSession(
                conversation_id=grant.conversation_id,
                visitor_id=grant.visitor_id,
                origin=origin,
                assistant=assistant,
                providers=providers_for(assistant.routing),
                transport=self,
                recorder=ConversationRecorder(tenant, grant.conversation_id),
                resumed=grant.resumed,
                quota=quota,
            )
        except BaseException as failure:  # the slot was taken: give it back, whatever went wrong
            if quota is not None:
                await quota.release()
            if isinstance(failure, _DrainingError):
                await self.close(code=int(CloseCode.SERVICE_RESTART))
                return
            raise
        log_context.bind(session=grant.conversation_id, organization=tenant.schema_name)
        live_session_opened(self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        if bytes_data is not None:
            await self.session.handle_audio(bytes_data)
        elif text_data is not None:
            await self.session.handle_text(text_data)

    async def disconnect(self, code: int) -> None:
        if self.session is not None:
            await self.session.end(EndReason.DISCONNECTED, CloseCode.NORMAL, notify=False)

    # -- Transport for the session: a send never waits for the client --
    # daphne's send hands the message to Twisted, which buffers it and returns: the coroutine finishes
    # without suspending, so a stuck client cannot stall the session here, and a timer around it could
    # never fire (an ``asyncio.timeout`` per send was 5 % of the loop's work at 200 phone calls).
    # What bounds a slow client's buffer is the reply pacing (audio goes out at real time plus 200 ms).
    async def send_event(self, event: dict[str, object]) -> None:
        if event["type"] == "error":
            VOICE_ERRORS.labels(event.get("code", "unknown")).inc()
        await self.send(text_data=json.dumps(event, separators=(",", ":")))

    async def send_audio(self, frame: bytes) -> None:
        await self.send(bytes_data=frame)
