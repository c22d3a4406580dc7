"""The assistant's replies: one at a time, each a ReplyPipeline (voice.pipeline.reply) whose events and
audio go straight to the transport. A new reply supersedes the one playing; a barge-in, a typed message
or the client's cancel stops it, and the listener keeps only what they heard (voice.parts.heard)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from voice.metrics import BARGE_INS, TURN_STAGE
from voice.parts.admission import SendEvent
from voice.parts.heard import Settlement, SpokenReply
from voice.pipeline.reply import Reply, ReplyPipeline, SendAudio
from voice.protocol import ErrorCode, ProtocolError
from voice.providers.base import ChatMessage, ProviderError
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
    ) -> None:
        self.assistant, self.providers = assistant, providers
        self.send_event, self.send_audio = send_event, send_audio
        self.settlement, self.visitor_emotion = settlement, visitor_emotion
        self.after_reply, self.on_cut, self.ended, self.name = after_reply, on_cut, ended, name
        self.text_only = False
        self.active: SpokenReply | None = None
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
        reply = self._new(detected_at=detected_at, endpoint_ms=endpoint_ms, stt_ms=stt_ms)
        pipeline = self._pipeline(reply)
        await self._launch(reply, lambda: pipeline.run_from_chat(self.providers.chat, messages, tools))

    async def say(self, text: str) -> None:
        """Say a fixed text (a greeting, a reminder)."""
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
        self, *, detected_at: float | None = None, endpoint_ms: float | None = None, stt_ms: float | None = None
    ) -> Reply:
        follows = self.assistant.voice_follows_emotion
        style, pace = voice_style(self.visitor_emotion()) if follows else ("", 1.0)
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
            task = asyncio.create_task(self._run(reply, stages))
            active = SpokenReply(reply=reply, task=task)
            self.active = active
            self.settlement.keep(active)

    async def _run(self, reply: Reply, stages: Callable[[], Awaitable[None]]) -> None:
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
            await self.send_event(
                ProtocolError(
                    ErrorCode.REPLY_FAILED, "Sorry, I could not answer just now. Please try again."
                ).as_event()
            )
        done = metrics(reply)
        await self.send_event({"type": "response.audio.done", "response_id": reply.id, "audio_ms": done["audio_ms"]})
        await self.send_event(
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


def metrics(reply: Reply) -> dict[str, float | None]:
    """The timings and counts of ``response.done`` (docs/websocket-protocol.md), in milliseconds."""
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
