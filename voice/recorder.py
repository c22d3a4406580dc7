"""Stores a session's conversation and turns off the hot path, in order (and reads its history back on resume).

Writes go through one queue per session and one writer task, so a slow database never delays a
reply, and turns are stored in the order they happened. ``close()`` drains the queue.

A write that fails because the database is briefly unavailable (connections terminated, a restart,
"too many clients": ``OperationalError``/``InterfaceError``) is retried with exponential backoff for up
to ``AURA_RECORDER_RETRY_S`` seconds; the writes queued after it wait, so the order holds. The broken
connection is closed on the database thread first, so the retry opens a fresh one. Retrying cannot
store anything twice: a turn carries a key chosen before the first attempt (``TurnRecord.key``), its
usage events are keyed by the turn, starting a conversation is idempotent for its connection, and most
other writes are updates or keyed the same way. (The exceptions, in the rare case where a commit's answer
is what was lost: a tool's lead or handoff, and a visitor profile's conversation count, could be written
twice.) Integrity and programming errors are not retried. Once a write has used the whole budget it is lost (logged as
an error); until the database answers again, the session's later writes are tried once each, so a
long outage holds no session's queue for longer than the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from conversations import actions
from conversations.actions import TurnRecord
from conversations.queries import History, conversation_history
from tenants.models import Organization
from tenants.tenancy import run_in_tenant
from voice.metrics import TURNS

logger = logging.getLogger(__name__)

# The database was unavailable, not the write wrong: worth another attempt on a new connection.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
RETRY_FIRST_DELAY_S = 0.1
RETRY_MAX_DELAY_S = 5.0


def _closing_broken_connection(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run ``fn`` on the database thread; if the database was unavailable, close that thread's
    connection before the error goes on, so the next attempt connects afresh."""
    try:
        return fn(**kwargs)
    except TRANSIENT_ERRORS:
        with contextlib.suppress(DatabaseError, psycopg.Error):
            connection.close()
        raise


class ConversationRecorder:
    def __init__(self, tenant: Organization, conversation_id: str, *, retry_s: float | None = None) -> None:
        self.tenant = tenant
        self.conversation_id = conversation_id
        self.retry_s = settings.AURA_RECORDER_RETRY_S if retry_s is None else retry_s
        self._unavailable = False  # a write used the whole retry budget; the database has not answered since
        self.lost = 0  # writes given up because the database stayed unavailable (the API answers 503 for them)
        self.connection = str(uuid.uuid4())  # this connection's claim on the conversation
        self._queue: asyncio.Queue[tuple[Callable[..., Any], dict[str, Any], asyncio.Future[Any]] | None] = (
            asyncio.Queue()
        )
        self._writer = asyncio.create_task(self._write_all(), name=f"recorder:{conversation_id}")
        self._waiting: set[asyncio.Task[None]] = set()  # updates waiting for the turn they change

    def start(
        self,
        *,
        assistant_id: int,
        visitor_id: str,
        channel: str,
        origin: str,
        caller_number: str = "",
        call_sid: str = "",
    ) -> asyncio.Future[Any]:
        return self._submit(
            actions.do_start_conversation,
            conversation_id=self.conversation_id,
            assistant_id=assistant_id,
            visitor_id=visitor_id,
            channel=channel,
            origin=origin,
            connection=self.connection,
            caller_number=caller_number,
            call_sid=call_sid,
        )

    def resume(self) -> asyncio.Future[History]:
        """Reopen the conversation and return its summary and the messages after it."""
        self._submit(actions.do_resume_conversation, conversation_id=self.conversation_id, connection=self.connection)
        return self._submit(conversation_history, conversation_id=self.conversation_id)

    def turn(self, record: TurnRecord) -> asyncio.Future[int]:
        TURNS.labels(record.role).inc()
        return self._submit(actions.do_record_turn, conversation_id=self.conversation_id, record=record)

    def heard(
        self,
        turn_id: asyncio.Future[int],
        *,
        heard_text: str,
        played_ms: float,
        interrupted: bool,
        delivery: str = "",
    ) -> None:
        async def update() -> None:
            await self._submit_after(
                turn_id,
                actions.do_record_heard_text,
                heard_text=heard_text,
                played_ms=played_ms,
                interrupted=interrupted,
                delivery=delivery,
            )

        task = asyncio.create_task(update())
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    def after_turn(self, turn_id: asyncio.Future[int], fn: Callable[..., Any], /, **kwargs: Any) -> None:
        """Run ``fn(turn_id=<the stored turn's id>, **kwargs)`` once the turn is stored (a later label, a job)."""
        task = asyncio.create_task(self._submit_after(turn_id, fn, **kwargs))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> asyncio.Future[Any]:
        """Run ``fn(**kwargs)`` in the tenant's schema after every write queued before it; await for its result."""
        return self._submit(fn, **kwargs)

    def end(self, reason: str) -> asyncio.Future[Any]:
        return self._submit(
            actions.do_end_conversation, conversation_id=self.conversation_id, reason=reason, connection=self.connection
        )

    async def close(self, timeout_s: float | None = None) -> None:
        """Wait for every queued write (by default: the retry budget and 10 s more), then stop the writer."""
        timeout_s = self.retry_s + 10.0 if timeout_s is None else timeout_s
        if self._waiting:
            await asyncio.wait(self._waiting, timeout=timeout_s)
        await self._queue.put(None)
        try:
            async with asyncio.timeout(timeout_s):
                await self._writer
        except TimeoutError:
            logger.error("conversation %s: pending writes abandoned after %s s", self.conversation_id, timeout_s)
            self._writer.cancel()

    def _submit(self, fn: Callable[..., Any], **kwargs: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, kwargs, future))
        return future

    async def _submit_after(self, turn_id: asyncio.Future[int], fn: Callable[..., Any], **kwargs: Any) -> None:
        try:
            resolved = await turn_id
        except Exception:  # noqa: BLE001 - the turn itself failed to store and was logged
            return
        await self._submit(fn, turn_id=resolved, **kwargs)

    async def _write_all(self) -> None:
        while (item := await self._queue.get()) is not None:
            fn, kwargs, future = item
            try:
                result = await self._write(fn, kwargs)
            except Exception as exc:
                logger.exception("conversation %s: %s failed", self.conversation_id, fn.__name__)
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: nobody may be waiting
            else:
                if not future.done():
                    future.set_result(result)

    async def _write(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """One write, retried while the database is unavailable, within the budget."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_s
        delay, attempt = RETRY_FIRST_DELAY_S, 1
        while True:
            try:
                result = await run_in_tenant(self.tenant, _closing_broken_connection, fn, kwargs)
            except TRANSIENT_ERRORS as exc:
                left = deadline - loop.time()
                if self._unavailable or left <= 0:
                    self._unavailable, self.lost = True, self.lost + 1
                    logger.error(
                        "conversation %s: %s lost: the database was unavailable for %d attempts: %s",
                        self.conversation_id,
                        fn.__name__,
                        attempt,
                        exc,
                    )
                    raise
                logger.warning(
                    "conversation %s: %s failed (%s); attempt %d in %.1f s",
                    self.conversation_id,
                    fn.__name__,
                    str(exc).strip() or type(exc).__name__,
                    attempt + 1,
                    min(delay, left),
                )
                await asyncio.sleep(min(delay, left))
                delay, attempt = min(delay * 2, RETRY_MAX_DELAY_S), attempt + 1
            else:
                self._unavailable = False
                return result
