"""The assistant's replies: one at a time, each a ReplyPipeline (voice.pipeline.reply) whose events and
audio go straight to the transport. A new reply supersedes the one playing; a barge-in, a typed message
or the client's cancel stops it, and the listener keeps only what they heard (voice.parts.heard).

A reply may start before the visitor's turn has ended (*preemptive*, ``prepare``): at a pause whose
transcript is known, the chat model, the first clause and its speech are produced while the silence
lasts, with nothing sent. When the turn ends at that pause, ``release`` sends it from that instant; if
the visitor speaks again (or anything else replies first), ``discard`` cancels it: nothing of it is sent,
stored or spoken, and its tokens are billed as a reply nobody heard. One held reply at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from voice.metrics import BARGE_INS, PREEMPTIVE_REPLIES, TURN_STAGE
from voice.parts.admission import SendEvent
from voice.parts.heard import Settlement, SpokenReply
from voice.pipeline.reply import Reply, ReplyPipeline, SendAudio
from voice.protocol import ErrorCode, ProtocolError
from voice.providers.base import ChatMessage, ProviderError, estimate_tokens
from voice.providers.registry import SessionProviders
from voice.queries import AssistantSnapshot
from voice.text.emotion import UPSET
from voice.tools.base import ToolBox
from voice.understanding import upset_hint, voice_style

logger = logging.getLogger("voice.session")  # the session's log lines keep their logger name

STOP_TIMEOUT_S = 2.0

# Told once a reply ended, with what reached the listener ("" when nothing did, or it failed); None: the
# reply said nothing at all.
AfterReply = Callable[[SpokenReply | None, str], None]
# Told of a preemptive reply thrown away: the reply and its prompt's estimated tokens (billed as unheard).
Unheard = Callable[[Reply, int], None]


@dataclass(slots=True)
class HeldReply:
    """A preemptive reply: produced, not yet sent (its events wait in ``events``)."""

    reply: Reply
    pause: int  # the pause (its last voiced frame) whose transcript it answers
    prompt_tokens: int
    task: asyncio.Task[None] | None = None
    events: list[dict[str, object]] = field(default_factory=list)
    released: bool = False

    async def send_or_keep(self, send_event: SendEvent, event: dict[str, object]) -> None:
        if self.released:
            await send_event(event)
        else:
            self.events.append(event)


class Replies:
    def __init__(
        self,
        assistant: AssistantSnapshot,
        *,
        providers: SessionProviders,
        send_event: SendEvent,
        send_audio: SendAudio,
        settlement: Settlement,
        visitor_emotion: Callable[[], str],
        after_reply: AfterReply,
        on_cut: Callable[[], None],
        ended: Callable[[], bool],
        name: str,
        unheard: Unheard | None = None,
    ) -> None:
        self.assistant, self.providers = assistant, providers
        self.unheard = unheard
        self.send_event, self.send_audio = send_event, send_audio
        self.settlement, self.visitor_emotion = settlement, visitor_emotion
        self.after_reply, self.on_cut, self.ended, self.name = after_reply, on_cut, ended, name
        self.text_only = False
        self.active: SpokenReply | None = None
        self.held: HeldReply | None = None  # a preemptive reply waiting for its turn to end
        self.next_reply_id = 1
        self._launching = asyncio.Lock()

    # ---------------------------------------------------------------- starting one
    async def chat(
        self,
        messages: Sequence[ChatMessage],
        tools: ToolBox | None,
        *,
        detected_at: float,
        endpoint_ms: float | None,
        stt_ms: float | None,
    ) -> None:
        """Answer the visitor: the chat model's reply, spoken as it comes."""
        self.discard()
        reply = self._new(detected_at=detected_at, endpoint_ms=endpoint_ms, stt_ms=stt_ms)
        pipeline = self._pipeline(reply)
        await self._launch(reply, lambda: pipeline.run_from_chat(self.providers.chat, messages, tools))

    async def say(self, text: str) -> None:
        """Say a fixed text (a greeting, a reminder)."""
        self.discard()
        reply = self._new()
        await self._launch(reply, lambda: self._pipeline(reply).run_from_text(text))

    async def say_until_heard(self, text: str) -> None:
        """Say a fixed text and wait until the listener has heard it to its end."""
        await self.say(text)
        active = self.active
        if active is not None:
            await asyncio.wait({active.task})
            if (playback_end := active.reply.playback_end()) is not None:
                await asyncio.sleep(max(0.0, playback_end - time.monotonic()))

    # ---------------------------------------------------------------- before the turn ends (preemptive)
    def prepare(
        self, messages: Sequence[ChatMessage], tools: ToolBox | None, *, pause: int, emotion: str | None = None
    ) -> None:
        """Start the reply to the turn so far during its pause (``pause``: its last voiced frame), held until
        ``release`` for the same pause; ``emotion``: how the visitor sounds in it (not yet their last turn's).
        Not while another reply is produced or heard."""
        self.discard()
        if self.ended() or self.producing() or self.audible():
            return
        reply = self._new(advance=False, emotion=emotion)  # its id is taken when it is released
        reply.hold = asyncio.Event()
        held = HeldReply(reply, pause, prompt_tokens=sum(estimate_tokens(m.content) for m in messages))

        async def send_event(event: dict[str, object]) -> None:
            await held.send_or_keep(self.send_event, event)

        pipeline = ReplyPipeline(reply, tts=self.providers.tts, send_event=send_event, send_audio=self.send_audio)
        held.task = asyncio.create_task(
            self._run(reply, lambda: pipeline.run_from_chat(self.providers.chat, messages, tools), send_event),
            name=f"preemptive-reply:{self.name}",
        )
        self.held = held
        PREEMPTIVE_REPLIES.labels("started").inc()

    async def release(self, pause: int, *, detected_at: float, endpoint_ms: float | None, stt_ms: float | None) -> bool:
        """The turn ended at ``pause``: send its held reply from now on. False when there is none to send
        (none was started, it was for another pause, or it failed: the caller replies afresh)."""
        held = self.held
        if held is None or held.pause != pause or held.reply.failed:
            self.discard()
            return False
        async with self._launching:
            if self.held is not held:  # thrown away while the lock was taken
                return False
            await self.interrupt("superseded")
            if self.held is not held:  # thrown away while the reply before it was stopped
                return False
            if self.ended():
                self.discard()
                return True
            self.held = None
            reply = held.reply
            self.next_reply_id = reply.id + 1
            reply.turn_detected_at, reply.endpoint_ms, reply.stt_ms = detected_at, endpoint_ms, stt_ms
            reply.started_at_wall = datetime.now(UTC)  # stored: the reply heard starts after the turn it answers
            try:
                await self.send_event({"type": "response.started", "response_id": reply.id})
                while held.events:  # what it said while held, in order; nothing can slip in before the flag is set
                    await self.send_event(held.events.pop(0))
            except BaseException:  # cancelled (the session ends): its task must not wait for a release forever
                self._drop(held)
                raise
            held.released = True
            assert held.task is not None
            assert reply.hold is not None
            active = SpokenReply(reply=reply, task=held.task)
            self.active = active
            self.settlement.keep(active)
            reply.hold.set()
        PREEMPTIVE_REPLIES.labels("released").inc()
        return True

    def discard(self) -> None:
        """Throw away the held reply, if any: nothing of it was sent; its tokens are billed as unheard."""
        held, self.held = self.held, None
        if held is not None:
            self._drop(held)

    def _drop(self, held: HeldReply) -> None:
        held.reply.stopped = True
        if held.task is not None:
            held.task.cancel()
        PREEMPTIVE_REPLIES.labels("dropped").inc()
        if self.unheard is not None:
            self.unheard(held.reply, held.prompt_tokens)

    # ---------------------------------------------------------------- what is going on
    def producing(self) -> bool:
        return self.active is not None and not self.active.task.done()

    def audible(self) -> bool:
        """Whether the listener is hearing a reply now (produced or still playing out)."""
        if self.active is None:
            return False
        if not self.active.task.done():
            return self.active.reply.first_audio_at is not None
        end = self.active.reply.playback_end()
        return end is not None and time.monotonic() < end

    # ---------------------------------------------------------------- stopping one
    async def interrupt(self, reason: str) -> None:
        """Stop the reply the visitor is hearing or waiting for; keep only what they heard."""
        active = self.active
        if active is None:
            return
        running = not active.task.done()
        if not running and not self.audible():
            self.active = None
            return
        if reason == "barge_in":
            BARGE_INS.inc()
        await self.stop(reason)

    async def stop(self, reason: str, *, notify: bool = True, played_ms: float | None = None) -> None:
        active = self.active
        assert active is not None
        self.active = None
        active.interrupted = True
        self.on_cut()  # a goodbye the visitor cut short does not end the conversation
        reply = active.reply
        # `stopped` is checked right before every audio send, and a send never yields before its frame
        # is written: from this line on no frame of the reply can go out, so the client hears at once.
        reply.stopped = True
        running = not active.task.done()
        if running:
            active.task.cancel()
        if notify:
            await self.send_event({"type": "response.interrupted", "response_id": reply.id, "reason": reason})
        if running:
            _, pending = await asyncio.wait({active.task}, timeout=STOP_TIMEOUT_S)
            if pending:  # a stage ignored its cancellation: never let that hold the session hostage
                logger.error("reply %s in %s did not stop within %s s", reply.id, self.name, STOP_TIMEOUT_S)
        heard = self.settlement.settle(active, reply.played_estimate_ms() if played_ms is None else played_ms)
        if notify:
            if heard is not None:
                await self.send_event(heard)
            if running:  # the reply's own end never came: this is its terminal event
                await self.send_event(
                    {
                        "type": "response.done",
                        "response_id": reply.id,
                        "text": reply.text,
                        "status": "interrupted",
                        "reason": reason,
                        "metrics": metrics(reply),
                    }
                )

    # ---------------------------------------------------------------- one reply's life
    def _new(
        self,
        *,
        detected_at: float | None = None,
        endpoint_ms: float | None = None,
        stt_ms: float | None = None,
        advance: bool = True,
        emotion: str | None = None,
    ) -> Reply:
        follows = self.assistant.voice_follows_emotion
        style, pace = voice_style(self.visitor_emotion() if emotion is None else emotion) if follows else ("", 1.0)
        reply = Reply(
            id=self.next_reply_id,
            voice=self.assistant.voice,
            speed=self.assistant.speech_speed * pace,
            style=style,
            text_only=self.text_only,
            turn_detected_at=detected_at if detected_at is not None else time.monotonic(),
            endpoint_ms=endpoint_ms,
            stt_ms=stt_ms,
        )
        if advance:
            self.next_reply_id += 1
        return reply

    def _pipeline(self, reply: Reply) -> ReplyPipeline:
        return ReplyPipeline(reply, tts=self.providers.tts, send_event=self.send_event, send_audio=self.send_audio)

    async def _launch(self, reply: Reply, stages: Callable[[], Awaitable[None]]) -> None:
        # One reply at a time: a launch waiting for the previous reply to stop must not let another
        # launch slip in between (a typed message arriving while a spoken turn starts its reply).
        async with self._launching:
            await self.interrupt("superseded")
            if self.ended():
                return
            await self.send_event({"type": "response.started", "response_id": reply.id})
            task = asyncio.create_task(self._run(reply, stages, self.send_event))
            active = SpokenReply(reply=reply, task=task)
            self.active = active
            self.settlement.keep(active)

    async def _run(self, reply: Reply, stages: Callable[[], Awaitable[None]], send_event: SendEvent) -> None:
        failed = False
        try:
            await stages()  # created here, so a reply cancelled before it starts leaves no coroutine behind
        except* ProviderError as group:
            error = group.exceptions[0]
            logger.warning("reply %s in %s failed: %s", reply.id, self.name, error)
            if isinstance(error, ProviderError) and error.route is not None and error.route.capability == "llm":
                reply.llm_route = error.route
            failed = True
        except* Exception:
            logger.exception("reply %s in %s crashed", reply.id, self.name)
            failed = True
        if failed:
            reply.failed = True
        if reply.hold is not None:  # a preemptive reply ends once it was released (or is thrown away first)
            await reply.hold.wait()
        if failed:
            await send_event(
                ProtocolError(
                    ErrorCode.REPLY_FAILED, "Sorry, I could not answer just now. Please try again."
                ).as_event()
            )
        done = metrics(reply)
        await send_event({"type": "response.audio.done", "response_id": reply.id, "audio_ms": done["audio_ms"]})
        await send_event(
            {
                "type": "response.done",
                "response_id": reply.id,
                "text": reply.text,
                "status": "failed" if failed else "completed",
                "metrics": done,
            }
        )
        observe_turn(reply, done, failed=failed)
        active = self.settlement.get(reply.id)
        if active is None or not (reply.text or failed):
            self.after_reply(None, "")  # nothing was said: no turn, no history entry
            return
        heard = self.settlement.remember_delivered(active)
        self.after_reply(active, "" if failed else heard)
        self.settlement.record_finished(active, heard, first_audio_ms=done["first_audio_ms"], total_ms=done["total_ms"])


def situation(assistant: AssistantSnapshot, *, time_zone: str, visitor_emotion: str, tools: ToolBox | None) -> str:
    """What the model should know about now: the local time, and how to use its tools."""
    local = datetime.now(ZoneInfo(time_zone))
    lines = [f"It is now {local:%A %d %B %Y, %H:%M} ({time_zone})."]
    if assistant.escalate_upset_visitors and visitor_emotion in UPSET:
        can_hand_off = tools is not None and "handoff" in tools.tools
        lines.append(upset_hint(visitor_emotion, can_hand_off=can_hand_off))
    if tools:
        lines.append("Use your tools when they help. If a tool reports an error, tell the visitor briefly and go on.")
        if "search_knowledge" in tools.tools:
            lines.append(
                "Answer questions about the business only from search_knowledge results; when it finds nothing, "
                "say that you do not know."
            )
    return " ".join(lines)


_STAGES = {
    "endpoint_delay": "endpoint_ms",
    "stt": "stt_ms",
    "llm_first_token": "llm_first_token_ms",
    "tts_first_byte": "tts_first_byte_ms",
    "first_audio": "first_audio_ms",
    "total": "total_ms",
}


def metrics(reply: Reply) -> dict[str, float | bool | None]:
    """The timings and counts of ``response.done`` (docs/websocket-protocol.md), in milliseconds. A reply
    started before the turn ended (preemptive) says so, and how long its first audio was ready before."""
    first_audio_ms = (reply.first_audio_at - reply.turn_detected_at) * 1000 if reply.first_audio_at else None
    return {
        "endpoint_ms": _round(reply.endpoint_ms),
        "stt_ms": _round(reply.stt_ms),
        "llm_first_token_ms": _round(reply.llm_first_token_ms),
        "llm_first_sentence_ms": _round(reply.llm_first_sentence_ms),
        "tts_first_byte_ms": _round(reply.tts_first_byte_ms),
        "first_audio_ms": _round(first_audio_ms),
        "total_ms": _round((time.monotonic() - reply.turn_detected_at) * 1000),
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "tts_characters": reply.tts_characters,
        "audio_ms": _round(reply.audio_sent_ms),
        **reply.preemption(),
    }


def observe_turn(reply: Reply, metrics: dict[str, object], *, failed: bool) -> None:
    """One log line per reply with its timings and route, and the stage histograms."""
    for stage, key in _STAGES.items():
        value = metrics.get(key)
        if isinstance(value, int | float):
            TURN_STAGE.labels(stage).observe(value / 1000)
    chosen = reply.llm_route.chosen if reply.llm_route else None
    fields = {
        "event": "turn",
        "response_id": reply.id,
        "status": "failed" if failed else "completed",
        "model": f"{chosen.provider}:{chosen.model}" if chosen else None,
        **metrics,
    }
    logger.info("turn %s %s", reply.id, fields["status"], extra={"fields": fields})


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
