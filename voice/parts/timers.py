"""Timers and transfers: the idle reminder and timeout, the session's maximum length, and ending (or
putting the call through to the transfer number) once the assistant's last words were heard."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from conversations.models import EndReason
from voice.parts.admission import End
from voice.parts.heard import SpokenReply
from voice.protocol import CloseCode
from voice.queries import AssistantSnapshot

logger = logging.getLogger("voice.session")  # the session's log lines keep their logger name

IDLE_REMINDER = "Are you still there? I'm here if you need anything."


class Timers:
    """Idle and length limits; neither ends a session while someone is speaking or a reply is under way."""

    def __init__(
        self,
        assistant: AssistantSnapshot,
        *,
        busy: Callable[[], bool],
        say: Callable[[str], Awaitable[None]],
        end: End,
        ended: Callable[[], bool],
        name: str,
    ) -> None:
        self.assistant, self.busy, self.say, self.end, self.ended, self.name = assistant, busy, say, end, ended, name
        self.opened_at = time.monotonic()
        self.last_activity = self.opened_at
        self.reminded = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._watch(), name=f"session-timer:{self.name}")

    def touch(self) -> None:
        """Something happened: the idle clock starts again."""
        self.last_activity = time.monotonic()

    def visitor_active(self) -> None:
        """The visitor spoke or typed: the idle clock starts again, and a later silence gets a new reminder."""
        self.last_activity = time.monotonic()
        self.reminded = False

    async def _watch(self) -> None:
        while not self.ended():
            await asyncio.sleep(1.0)
            now = time.monotonic()
            busy = self.busy()
            if now - self.opened_at > self.assistant.max_session_s and not busy:
                await self.end(EndReason.MAX_DURATION, CloseCode.MAX_DURATION)
            elif not busy and now - self.last_activity > self.assistant.idle_timeout_s:
                if self.reminded:
                    await self.end(EndReason.IDLE_TIMEOUT, CloseCode.IDLE_TIMEOUT)
                else:
                    self.reminded = True
                    self.last_activity = now
                    await self.say(IDLE_REMINDER)


class Ending:
    """The assistant ends the conversation (its end_conversation tool) or hands the call over (transfer_call):
    both wait for the reply that says so to be heard, and a reply cut short or unheard cancels them."""

    def __init__(self, *, transfer: Callable[[], Awaitable[None]] | None, end: End, name: str) -> None:
        self.transfer, self.end, self.name = transfer, end, name
        self.reason = ""  # set by a tool: the session ends once the reply is heard
        self.task: asyncio.Task[None] | None = None
        # the call is being (or was) put through to the transfer number: its stream ending is the transfer
        self.transferring = False

    def end_after_reply(self, reason: str) -> None:
        self.reason = reason

    def transfer_after_reply(self) -> None:
        self.reason = EndReason.TRANSFERRED

    def after_reply(self, spoken: SpokenReply | None) -> None:
        """A reply ended: heard (some of) it, the ending it asked for starts; unheard, it is dropped."""
        if spoken is None:
            self.reason = ""  # a goodbye nobody heard ends nothing
        elif self.reason and self.task is None:
            self.task = asyncio.create_task(self._end_once_heard(spoken), name=f"ending:{self.name}")

    def cancel(self) -> None:
        """The reply was cut short: a goodbye the visitor interrupted does not end the conversation."""
        self.reason = ""
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
            self.task = None

    async def _end_once_heard(self, spoken: SpokenReply) -> None:
        """Let the last words be heard, then put the call through if that was asked, and close normally."""
        reason = self.reason or EndReason.ASSISTANT_ENDED
        if (playback_end := spoken.reply.playback_end()) is not None:
            await asyncio.sleep(max(0.0, playback_end - time.monotonic()) + 0.2)
        if reason == EndReason.TRANSFERRED and self.transfer is not None:
            self.transferring = True  # the carrier may end the stream before its answer to the transfer comes
            try:
                await self.transfer()
            except Exception:  # the caller is not left hanging silently: the call ends as it would have
                logger.exception("conversation %s: the transfer failed", self.name)
                self.transferring = False
                reason = EndReason.ERROR
        await self.end(reason, CloseCode.NORMAL)
