"""Text conversations over the REST API: an assistant without audio, with the same memory, tools and router.

Each message runs a ``voice.session.VoiceSession`` in text-only mode for the length of one reply: it is
built ``resumed`` (so it loads the conversation's history and summary from the database), takes the
message, and collects the protocol events of its reply through ``_Collector`` (a Transport). The request's
session ends without ending the conversation (``keep_conversation``); ``…/end/`` ends it, learning the
visitor's profile as a voice session would. No greeting is spoken: a resumed session never greets.

One message at a time per conversation (a Redis lock), and every reply is bounded in time.

A database that is unavailable beyond the recorder's retries (voice.recorder) fails the message with
503 ``database_unavailable`` and ``Retry-After`` (streamed: a last ``error`` event of that code), never
a reply whose turns were not stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator

import redis
from asgiref.sync import async_to_sync
from django.db import connection, connections
from rest_framework import exceptions, status

from billing.sessions import SessionRefusedError, open_session
from conversations.models import EndReason
from core.redis import platform_redis_sync
from tenants.models import Organization
from tenants.tenancy import run_in_tenant
from voice.protocol import CloseCode
from voice.providers.registry import providers_for
from voice.queries import assistant_snapshot
from voice.recorder import TRANSIENT_ERRORS, ConversationRecorder
from voice.session import VoiceSession

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000
REPLY_TIMEOUT_S = 60.0
LOCK_TTL_S = int(REPLY_TIMEOUT_S) + 30  # a crashed process's lock expires on its own
# Protocol events the API does not pass on: the session's own bookkeeping, and audio (there is none).
_NOT_FORWARDED = frozenset({"session.created", "session.ended", "response.audio.done"})
_DONE = object()

Emit = Callable[[dict[str, object]], None]

DATABASE_RETRY_AFTER_S = 5
_DATABASE_UNAVAILABLE = {
    "type": "error",
    "code": "database_unavailable",
    "message": "The database is briefly unavailable; the reply was not stored. "
    f"Send the message again in {DATABASE_RETRY_AFTER_S} s.",
    "retry_after_s": DATABASE_RETRY_AFTER_S,
    "http_status": status.HTTP_503_SERVICE_UNAVAILABLE,
}


class DatabaseUnavailable(exceptions.APIException):
    """503 with Retry-After (the API's exception handler sends ``wait`` as that header)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _DATABASE_UNAVAILABLE["message"]
    default_code = "database_unavailable"
    wait = DATABASE_RETRY_AFTER_S


class _Collector:
    """The Transport of an API session: hands every event to ``emit`` (a list's append or a queue's put)."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.done = asyncio.Event()

    async def send_event(self, event: dict[str, object]) -> None:
        if event.get("type") == "response.done":
            self.done.set()
        if event.get("type") not in _NOT_FORWARDED:
            self.emit(event)

    async def send_audio(self, frame: bytes) -> None:  # text-only: never called
        return None

    async def close(self, code: int) -> None:
        return None


# ---------------------------------------------------------------- one message at a time
def _redis() -> redis.Redis:
    return platform_redis_sync()  # the process's one bounded pool (replies are bytes)


def _lock_key(conversation_id: str) -> str:
    return f"aura:api:conversation-busy:{connection.schema_name}:{conversation_id}"


class ConversationLock:
    """``SET NX`` with an expiry. If Redis is down the API stays open (as its rate limits do)."""

    def __init__(self, conversation_id: str) -> None:
        self.key = _lock_key(conversation_id)
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        try:
            return bool(_redis().set(self.key, self.token, nx=True, ex=LOCK_TTL_S))
        except redis.RedisError as exc:
            logger.warning("conversation lock unavailable, not serialising messages: %s", exc)
            return True

    def release(self) -> None:
        try:
            if _redis().get(self.key) == self.token.encode():
                _redis().delete(self.key)
        except redis.RedisError as exc:
            logger.warning("conversation lock not released (it expires): %s", exc)


# ---------------------------------------------------------------- running a reply
def _session(
    tenant: Organization, conversation_id: str, visitor_id: str, assistant: object, collector: _Collector, quota: object
) -> VoiceSession:
    return VoiceSession(
        conversation_id=conversation_id,
        visitor_id=visitor_id,
        origin="api",
        assistant=assistant,
        providers=providers_for(assistant.routing),
        transport=collector,
        recorder=ConversationRecorder(tenant, conversation_id),
        resumed=True,
        quota=quota,
        summaries_in_worker=True,
    )


async def _start(session: VoiceSession) -> None:
    await session.handle_text(json.dumps({"type": "session.start", "text_only": True}))  # the visitor is the session's


async def converse(
    tenant: Organization, *, conversation_id: str, assistant_id: int, visitor_id: str, text: str, emit: Emit
) -> None:
    """Answer one message; every forwarded event goes to ``emit``, the last is ``response.done`` or ``error``."""
    collector = _Collector(emit)
    assistant = await run_in_tenant(tenant, assistant_snapshot, assistant_id)
    if assistant is None:
        emit({"type": "error", "code": "assistant_not_found", "message": "The conversation's assistant is gone."})
        return
    try:
        quota = await open_session(tenant)
    except SessionRefusedError as refused:
        emit(refused.as_event() | {"http_status": refused.http_status})
        return
    try:
        session = _session(tenant, conversation_id, visitor_id, assistant, collector, quota)
    except BaseException:
        await quota.release()
        raise
    try:
        await _start(session)
        await session.handle_api_text(text)
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            await collector.done.wait()
    except TimeoutError:
        emit(
            {
                "type": "error",
                "code": "reply_timeout",
                "message": f"No reply within {REPLY_TIMEOUT_S:.0f} s; try again.",
                "http_status": 504,
            }
        )
    finally:
        if session.ending_reason:  # the assistant ended the conversation (end_conversation tool)
            await session.end(EndReason.ASSISTANT_ENDED, CloseCode.NORMAL, notify=False)
        else:
            await session.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL, notify=False, keep_conversation=True)
    if session.recorder.lost:  # the reply's turns (or usage) could not be stored: the client sends it again
        emit(dict(_DATABASE_UNAVAILABLE))


async def finish(tenant: Organization, *, conversation_id: str, assistant_id: int, visitor_id: str) -> None:
    """End the conversation as a voice session ends: stored as ended, the visitor's profile learnt."""
    assistant = await run_in_tenant(tenant, assistant_snapshot, assistant_id)
    if assistant is None:  # cannot happen: an assistant with conversations cannot be deleted
        return
    session = _session(tenant, conversation_id, visitor_id, assistant, _Collector(lambda event: None), None)
    await _start(session)
    session.memory.visitor_spoke = any(message.role == "user" for message in session.history)
    await session.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL, notify=False)


def run_here(tenant: Organization, fn: Callable[..., Awaitable[None]], /, **kwargs: object) -> None:
    """Run an async function of this module from the request's thread, and stay in the tenant's schema.

    The session's database calls run on this thread (thread-sensitive), and some of them switch it to
    the public schema (billing's quota reads): the request goes on in the tenant's schema afterwards.
    """
    try:
        async_to_sync(fn)(tenant, **kwargs)
    finally:
        connection.set_tenant(tenant)


def reply_whole(tenant: Organization, lock: ConversationLock, **kwargs: object) -> list[dict[str, object]]:
    """Run the reply in this request and return its events."""
    events: list[dict[str, object]] = []
    try:
        run_here(tenant, converse, emit=events.append, **kwargs)
    except TRANSIENT_ERRORS:
        logger.warning("API reply in %s: the database is unavailable", kwargs.get("conversation_id"), exc_info=True)
        raise DatabaseUnavailable() from None
    finally:
        lock.release()
    if events and events[-1].get("code") == _DATABASE_UNAVAILABLE["code"]:
        raise DatabaseUnavailable()
    return events


def reply_stream(tenant: Organization, lock: ConversationLock, **kwargs: object) -> Iterator[str]:
    """Start the reply now, on its own thread, and return server-sent events as they come.

    The reply runs to its end (and releases the lock) even if the client goes away; it is bounded in time.
    """
    events: queue.Queue[object] = queue.Queue()

    def run() -> None:
        try:
            async_to_sync(converse)(tenant, emit=events.put, **kwargs)
        except TRANSIENT_ERRORS:
            logger.warning("API reply in %s: the database is unavailable", kwargs.get("conversation_id"), exc_info=True)
            events.put(dict(_DATABASE_UNAVAILABLE))
        except Exception:
            logger.exception("API reply in %s crashed", kwargs.get("conversation_id"))
            events.put({"type": "error", "code": "internal_error", "message": "The reply failed; it has been logged."})
        finally:
            lock.release()
            connections.close_all()  # this thread's database connections
            events.put(_DONE)

    worker = threading.Thread(target=run, name=f"api-reply:{kwargs.get('conversation_id')}", daemon=True)
    worker.start()
    return _sse(events)


def _sse(events: queue.Queue[object]) -> Iterator[str]:
    while True:
        try:
            event = events.get(timeout=REPLY_TIMEOUT_S + 15)
        except queue.Empty:  # never hang: the worker is bounded, this is the last resort
            event = {"type": "error", "code": "reply_timeout", "message": "No reply in time; try again."}
            yield _format(event)
            return
        if event is _DONE:
            return
        assert isinstance(event, dict)
        event.pop("http_status", None)
        yield _format(event)


def _format(event: dict[str, object]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
