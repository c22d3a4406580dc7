"""The voice session's Transport over a Twilio media stream.

The session speaks the widget's protocol; Twilio understands audio, marks and ``clear``. This maps one
onto the other:

- reply audio (24 kHz PCM tagged with its reply) → 8 kHz µ-law ``media``, then a ``mark`` named after
  the reply and how far into it the chunk ends (``r<reply>:<ms>``);
- Twilio echoes each mark once the caller has heard the audio before it: that is what was played;
- ``response.interrupted`` → ``clear`` (Twilio drops the queued audio and returns the marks still
  pending, which say nothing about playing and are ignored); once the session has settled the heard
  text from its own pacing estimate (``response.heard``), the marks' account replaces it, as a
  widget's ``response.played`` does;
- other events have no place on a phone line and are dropped (errors are logged and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telephony.media_streams import clear_message, mark_message, media_message
from voice.audio.phone import PHONE_RATE, PhoneAudioOut
from voice.metrics import VOICE_ERRORS
from voice.protocol import CloseCode, split_audio_frame

logger = logging.getLogger(__name__)

CLOSE_DRAIN_S = 10.0  # closing waits this long at most for the caller to hear the last reply (a goodbye)
_CLOSE_AT_ONCE = frozenset({int(CloseCode.PROTOCOL_ABUSE), int(CloseCode.INTERNAL_ERROR)})
_MS_PER_ULAW_BYTE = 1000 / PHONE_RATE

SendText = Callable[[str], Awaitable[None]]
Close = Callable[[int], Awaitable[None]]
Played = Callable[[int, float], None]


@dataclass(slots=True)
class _ReplyAudio:
    """One reply's audio on its way to the caller."""

    out: PhoneAudioOut = field(default_factory=PhoneAudioOut)
    # How much audio went to the caller (ms of µ-law out). The resampler holds back its filter delay,
    # so this trails the reply's 24 kHz audio handed over, but sample n out is the reply's sample at
    # n / 8000 s: marks in these units are positions on the reply's own timeline.
    sent_ms: float = 0.0
    # The chunks not yet heard, in order: where each ends (ms) and when it was sent.
    pending: list[tuple[float, float]] = field(default_factory=list)
    heard_ms: float = 0.0  # the end of the last chunk Twilio says was played
    heard_at: float | None = None  # when that mark came back
    cleared: bool = False
    reported: bool = False


class TwilioTransport:
    def __init__(self, stream_sid: str, *, send_text: SendText, close: Close) -> None:
        self.stream_sid = stream_sid
        self._send_text = send_text
        self._close = close
        self.on_played: Played | None = None  # the session's ``played``, set once the session exists
        self._replies: dict[int, _ReplyAudio] = {}
        self._drained = asyncio.Event()
        self._drained.set()
        self.marks_sent = 0
        self.marks_heard = 0
        self.clears_sent = 0

    # ---------------------------------------------------------------- Transport
    async def send_event(self, event: dict[str, object]) -> None:
        kind = event["type"]
        if kind == "response.interrupted":
            await self._clear(int(event["response_id"]))  # type: ignore[call-overload]
        elif kind == "response.heard":
            self._report_heard(int(event["response_id"]))  # type: ignore[call-overload]
        elif kind == "response.audio.done":
            await self._finish(int(event["response_id"]))  # type: ignore[call-overload]
        elif kind == "error":
            VOICE_ERRORS.labels(event.get("code", "unknown")).inc()
            logger.info("phone stream %s: %s: %s", self.stream_sid, event.get("code"), event.get("message"))

    async def send_audio(self, frame: bytes) -> None:
        reply_id, pcm = split_audio_frame(frame)
        audio = self._replies.get(reply_id)
        if audio is None:
            audio = self._replies[reply_id] = _ReplyAudio()
            for old in [rid for rid in self._replies if rid < reply_id - 8]:
                del self._replies[old]
        if audio.cleared:
            return
        await self._send_chunk(reply_id, audio, audio.out.process(pcm))

    async def close(self, code: int) -> None:
        """Let the caller hear what was sent (its marks come back), then close: Twilio ends the call.

        Not for an abusive or failed stream: those end from inside the receive loop, which then cannot
        read the marks anyway (waiting would always take the whole CLOSE_DRAIN_S)."""
        if code not in _CLOSE_AT_ONCE:
            await self.all_heard()
        await self._close(code)

    async def all_heard(self, timeout_s: float = CLOSE_DRAIN_S) -> None:
        """Until Twilio has played everything sent (every mark came back), or ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._drained.wait()

    # ---------------------------------------------------------------- from Twilio
    def mark_heard(self, name: str) -> None:
        """Twilio played everything up to this mark (or cleared it: then it is ignored)."""
        reply_id, end_ms = _parse_mark(name)
        audio = self._replies.get(reply_id) if reply_id is not None else None
        ends = [end for end, _ in audio.pending] if audio is not None else []
        if audio is None or end_ms not in ends:
            return
        del audio.pending[: ends.index(end_ms) + 1]
        if not audio.cleared:
            self.marks_heard += 1
            audio.heard_ms, audio.heard_at = end_ms, time.monotonic()
        self._update_drained()

    def heard_ms(self, reply_id: int) -> float:
        """How much of a reply the caller has heard, from the marks: the last one echoed, plus the time
        the next chunk can have been playing since (from that echo, or from its sending if it was sent
        later: the caller's buffer had run dry), up to that chunk's end. Never more than was heard,
        give or take the network's delay."""
        audio = self._replies.get(reply_id)
        if audio is None:
            return 0.0
        if not audio.pending:
            return audio.heard_ms
        next_end, next_sent_at = audio.pending[0]
        playing_since = max(audio.heard_at or 0.0, next_sent_at)
        elapsed = max(0.0, (time.monotonic() - playing_since) * 1000)
        return min(audio.heard_ms + elapsed, next_end)

    def heard_ms_pending(self, reply_id: int) -> float | None:
        """For a reply with audio still queued at Twilio (marks pending, not cleared): how much was heard
        (``heard_ms``); None otherwise. The session asks this when the caller hangs up."""
        audio = self._replies.get(reply_id)
        if audio is None or audio.cleared or not audio.pending:
            return None
        return self.heard_ms(reply_id)

    # ---------------------------------------------------------------- internals
    async def _send_chunk(self, reply_id: int, audio: _ReplyAudio, ulaw: bytes) -> None:
        if not ulaw:
            return
        audio.sent_ms += len(ulaw) * _MS_PER_ULAW_BYTE
        end_ms = round(audio.sent_ms, 1)
        audio.pending.append((end_ms, time.monotonic()))
        self._drained.clear()
        await self._send_text(media_message(self.stream_sid, ulaw))
        await self._send_text(mark_message(self.stream_sid, f"r{reply_id}:{end_ms}"))
        self.marks_sent += 1

    async def _finish(self, reply_id: int) -> None:
        audio = self._replies.get(reply_id)
        if audio is not None and not audio.cleared:
            await self._send_chunk(reply_id, audio, audio.out.flush())

    async def _clear(self, reply_id: int) -> None:
        audio = self._replies.get(reply_id)
        if audio is None or audio.cleared:
            return
        # Settle what was heard before Twilio hands back the pending marks.
        audio.heard_ms = self.heard_ms(reply_id)
        audio.cleared = True
        self.clears_sent += 1
        self._update_drained()
        await self._send_text(clear_message(self.stream_sid))

    def _report_heard(self, reply_id: int) -> None:
        audio = self._replies.get(reply_id)
        if audio is None or not audio.cleared or audio.reported or self.on_played is None:
            return
        audio.reported = True
        self.on_played(reply_id, audio.heard_ms)

    def _update_drained(self) -> None:
        if not any(audio.pending and not audio.cleared for audio in self._replies.values()):
            self._drained.set()


def _parse_mark(name: str) -> tuple[int | None, float | None]:
    reply, sep, end = name.partition(":")
    if not sep or not reply.startswith("r"):
        return None, None
    try:
        return int(reply[1:]), float(end)
    except ValueError:
        return None, None
