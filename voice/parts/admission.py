"""Admission: what a session lets in. Every message counts against a flood limit and every bad one
against an error limit (both end the session when abused); the plan's quota is looked at between turns
and, once a hard cap is reached, the session says why it stops and ends (billing.sessions)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from billing.sessions import SessionQuota
from conversations.models import EndReason
from voice.protocol import CloseCode, ErrorCode, ProtocolError

MESSAGES_PER_S = 100.0
MESSAGE_BURST = 200.0
MAX_DROPPED_MESSAGES = 400
MAX_PROTOCOL_ERRORS = 50
QUOTA_GOODBYE = "I'm sorry, this assistant has reached its usage limit for now, so I have to stop here. Goodbye!"

SendEvent = Callable[[dict[str, object]], Awaitable[None]]
End = Callable[[str, CloseCode], Awaitable[None]]


@dataclass(slots=True)
class _Bucket:
    """Token bucket over incoming messages: floods are dropped, sustained floods end the session."""

    tokens: float = MESSAGE_BURST
    updated: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(MESSAGE_BURST, self.tokens + (now - self.updated) * MESSAGES_PER_S)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Admission:
    """The flood and bad-input limits of one session's incoming messages."""

    def __init__(self, *, send_event: SendEvent, end: End) -> None:
        self.send_event, self.end = send_event, end
        self.bucket = _Bucket()
        self.dropped = 0
        self.protocol_errors = 0
        self.last_rate_warning = 0.0

    async def admit(self) -> bool:
        """Count a message: False when it must be dropped (a flood; a sustained one ends the session)."""
        if self.bucket.take():
            return True
        self.dropped += 1
        if self.dropped > MAX_DROPPED_MESSAGES:
            await self.end(EndReason.PROTOCOL_ABUSE, CloseCode.PROTOCOL_ABUSE)
            return False
        now = time.monotonic()
        if now - self.last_rate_warning > 1.0:
            self.last_rate_warning = now
            await self.send_event(
                ProtocolError(ErrorCode.RATE_LIMITED, "too many messages; some were dropped").as_event()
            )
        return False

    async def refuse(self, error: ProtocolError) -> None:
        """Answer a bad message with its error; too many of them end the session."""
        self.protocol_errors += 1
        if self.protocol_errors > MAX_PROTOCOL_ERRORS:
            await self.end(EndReason.PROTOCOL_ABUSE, CloseCode.PROTOCOL_ABUSE)
            return
        await self.send_event(error.as_event())


class Quota:
    """The plan's limits, looked at between turns (billing.sessions); None: no limits to watch."""

    def __init__(
        self,
        quota: SessionQuota | None,
        *,
        say_until_heard: Callable[[str], Awaitable[None]],
        end: End,
        ended: Callable[[], bool],
        name: str,
    ) -> None:
        self.quota, self.say_until_heard, self.end, self.ended, self.name = quota, say_until_heard, end, ended, name
        self.task: asyncio.Task[None] | None = None

    def allows_reply(self) -> bool:
        """At a turn boundary: False past the hard cap, and the session is then ending for it."""
        if self.quota is None or not self.quota.exhausted:
            return True
        if self.task is None and not self.ended():
            self.task = asyncio.create_task(self._goodbye(), name=f"quota:{self.name}")
        return False

    def check_after(self, turn_id: asyncio.Future[int]) -> None:
        """Once a turn (and its usage) is stored, look at the quota again, in the background."""
        if self.quota is not None:
            self.quota.check_after(turn_id)

    async def release(self) -> None:
        if self.quota is not None:
            await self.quota.release()

    async def _goodbye(self) -> None:
        """Say why the conversation stops, let it be heard, then end with reason ``quota`` (close 4029)."""
        await self.say_until_heard(QUOTA_GOODBYE)
        await self.end(EndReason.QUOTA, CloseCode.QUOTA)
