"""A visitor's voice session: protocol events in, turn-taking, replies, barge-in, timers, storage.

Transport-agnostic: the Channels consumer hands it frames and gives it a Transport to answer on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from billing.sessions import SessionQuota
from conversations.actions import TurnRecord
from conversations.models import Channel, Delivery, EndReason, Role
from voice.audio.vad import SpeechPaused, SpeechStarted, SpeechStopped, TurnConfig
from voice.metrics import (
    BARGE_INS,
    SESSIONS_TOTAL,
    TURN_STAGE,
)
from voice.parts.admission import Admission, Quota
from voice.parts.memory import SessionMemory
from voice.parts.understanding import TurnUnderstanding
from voice.pipeline.input import AudioInput
from voice.pipeline.reply import Reply, ReplyPipeline
from voice.pipeline.turn_end import BYTES_PER_MS, Heard, Spent, TurnEnd, transcribe
from voice.protocol import (
    MAX_FRAME_BYTES,
    OUTPUT_FORMAT,
    OUTPUT_SAMPLE_RATE,
    PROTOCOL,
    CloseCode,
    ErrorCode,
    InputText,
    ProtocolError,
    ResponseCancel,
    ResponsePlayed,
    SessionEnd,
    SessionStart,
    check_audio_frame,
    parse_client_event,
)
from voice.providers.base import ChatMessage, ProviderError
from voice.providers.registry import SessionProviders
from voice.queries import AssistantSnapshot
from voice.recorder import ConversationRecorder
from voice.text.emotion import UPSET
from voice.tools.base import ToolBox, ToolContext
from voice.tools.registry import assistant_tools
from voice.understanding import (
    upset_hint,
    voice_style,
)

logger = logging.getLogger(__name__)

IDLE_REMINDER = "Are you still there? I'm here if you need anything."
PLAYED_TOLERANCE_MS = 40.0
STOP_TIMEOUT_S = 2.0
UNCANCELLED_ECHO_BARGE_IN_MS = 600
KEPT_REPLIES = 8


@dataclass(frozen=True, slots=True)
class PhoneCall:
    """A session carried by a phone call (telephony): who called and the call's id at the carrier."""

    caller: str
    call_sid: str
    # Puts the caller through to the organization's transfer number (telephony); None: no transfers.
    transfer: Callable[[], Awaitable[None]] | None = None


class Transport(Protocol):
    async def send_event(self, event: dict[str, object]) -> None: ...
    async def send_audio(self, frame: bytes) -> None: ...
    async def close(self, code: int) -> None: ...


@dataclass(slots=True)
class _ActiveReply:
    reply: Reply
    task: asyncio.Task[None]
    turn_id: asyncio.Future[int] | None = None
    history_index: int | None = None
    interrupted: bool = False
    heard_sent: str | None = None  # the text of the last response.heard: it is not sent again unchanged


def _now() -> datetime:
    return datetime.now(UTC)


class VoiceSession:
    def __init__(
        self,
        *,
        conversation_id: str,
        visitor_id: str,
        origin: str,
        assistant: AssistantSnapshot,
        providers: SessionProviders,
        transport: Transport,
        recorder: ConversationRecorder,
        resumed: bool = False,
        quota: SessionQuota | None = None,
        summaries_in_worker: bool = False,
        call: PhoneCall | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.visitor_id = visitor_id
        self.origin = origin
        self.assistant = assistant
        self.providers = providers
        self.transport = transport
        self.recorder = recorder
        self.resumed = resumed
        self.call = call  # a phone call: channel "phone", the caller's number and call SID are stored
        self.admission = Admission(send_event=transport.send_event, end=self.end)
        self.quota = Quota(
            quota, say_until_heard=self._say_until_heard, end=self.end, ended=lambda: self.ended, name=conversation_id
        )
        self.started = False
        self.text_only = False
        self.input: AudioInput | None = None
        self.turn_end: TurnEnd | None = None  # semantic end of turn, when the assistant has it on
        self.memory = SessionMemory(
            assistant,
            chat=providers.chat,
            recorder=recorder,
            conversation_id=conversation_id,
            visitor_id=visitor_id,
            in_worker=summaries_in_worker,
        )
        self.tools: ToolBox | None = None
        self.understanding = TurnUnderstanding(
            assistant,
            chat=providers.chat,
            recorder=recorder,
            history=self.memory.history,
            in_worker=summaries_in_worker,
            ended=lambda: self.ended,
            name=conversation_id,
        )
        self.ending_reason = ""  # set by the end_conversation tool: the session ends once the reply is heard
        self.ending_task: asyncio.Task[None] | None = None
        # the call is being (or was) put through to the transfer number: its stream ending is the transfer
        self.transferring = False
        self.active: _ActiveReply | None = None
        self.turn_task: asyncio.Task[None] | None = None
        self.replies: dict[int, _ActiveReply] = {}
        self.next_reply_id = 1
        self.opened_at = time.monotonic()
        self.last_activity = self.opened_at
        self.reminded = False
        self.ended = False
        self.timer: asyncio.Task[None] | None = None
        self._pending_sends: set[asyncio.Task[None]] = set()
        self._launching = asyncio.Lock()

    @property
    def history(self) -> list[ChatMessage]:
        """What was said and heard in this conversation (the model sees a composition of it)."""
        return self.memory.history

    # ---------------------------------------------------------------- incoming
    async def handle_text(self, raw: str) -> None:
        if not await self._admit():
            return
        try:
            event = parse_client_event(raw)
            if isinstance(event, SessionStart):
                await self._start(event)
            elif not self.started:
                raise ProtocolError(ErrorCode.NOT_STARTED, "send session.start first")
            elif isinstance(event, InputText):
                await self._typed(event.text)
            elif isinstance(event, ResponsePlayed):
                self._played(event.response_id, event.played_ms)
            elif isinstance(event, ResponseCancel):
                await self.interrupt("cancelled")
            elif isinstance(event, SessionEnd):
                await self.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL)
        except ProtocolError as error:
            await self._refuse(error)

    async def handle_audio(self, frame: bytes) -> None:
        if not await self._admit():
            return
        try:
            if not self.started:
                raise ProtocolError(ErrorCode.NOT_STARTED, "send session.start before audio")
            if self.input is None:
                raise ProtocolError(ErrorCode.TEXT_ONLY_SESSION, "this session is text-only")
            check_audio_frame(frame)
        except ProtocolError as error:
            await self._refuse(error)
            return
        self.input.detector.assistant_speaking = self._assistant_audible()
        for event in await self.input.listen(frame):
            if isinstance(event, SpeechStarted):
                await self._speech_started(event)
            elif isinstance(event, SpeechPaused):
                if self.turn_end is not None:
                    self.turn_end.paused(event)
            elif isinstance(event, SpeechStopped):
                await self._speech_stopped(event)
        if self.turn_end is not None:
            self.turn_end.check()

    # -- for transports that do not speak the widget protocol (telephony) --
    async def start(self, start: SessionStart) -> None:
        """Start as a widget's ``session.start`` would."""
        if not await self._admit():
            return
        try:
            await self._start(start)
        except ProtocolError as error:
            await self._refuse(error)

    async def admit(self) -> bool:
        """Count a message against the session's flood limit: False when it must be dropped."""
        return await self._admit()

    async def reject(self, error: ProtocolError) -> None:
        """A message the transport could not read: answered (and counted) like a bad widget event."""
        if await self._admit():
            await self._refuse(error)

    async def handle_keys(self, text: str) -> None:
        """What the caller typed on the phone's keypad, put in words ("The caller pressed 2")."""
        if not self.started or self.ended:
            return
        await self._typed(text, input_mode="dtmf")

    def played(self, response_id: int, played_ms: float) -> None:
        """How much of a reply the listener heard, as a widget's ``response.played`` reports it."""
        if not self.ended:
            self._played(response_id, played_ms)

    async def _admit(self) -> bool:
        return not self.ended and await self.admission.admit()

    async def _refuse(self, error: ProtocolError) -> None:
        await self.admission.refuse(error)

    # ---------------------------------------------------------------- session life
    async def _start(self, start: SessionStart) -> None:
        if self.started:
            raise ProtocolError(ErrorCode.ALREADY_STARTED, "the session has already started", event="session.start")
        self.started = True
        self.text_only = start.text_only
        # Who the visitor is comes with the session (the widget's signed token, the API's conversation, the
        # call): never from session.start, which any client can fill in (docs/widget.md).
        if not start.text_only:
            self.input = AudioInput(start.sample_rate, self._turn_config(start.echo_cancellation))
            if self.input.config.semantic:
                self.turn_end = TurnEnd(
                    self.providers.stt, self.input.detector, self.input.config, language=self.assistant.language
                )
        if self.resumed:
            await self.memory.resume()
        else:
            self.recorder.start(
                assistant_id=self.assistant.id,
                visitor_id=self.visitor_id,
                channel=Channel.PHONE if self.call else Channel.TEXT if start.text_only else Channel.VOICE,
                origin=self.origin,
                caller_number=self.call.caller if self.call else "",
                call_sid=self.call.call_sid if self.call else "",
            )
        greeting = await self._prepare_memory_and_tools()
        providers = self.providers
        await self.transport.send_event(
            {
                "type": "session.created",
                "protocol": PROTOCOL,
                "conversation_id": self.conversation_id,
                "assistant": {"name": self.assistant.name},
                "greeting": greeting,
                "input_sample_rate": start.sample_rate,
                "output_sample_rate": OUTPUT_SAMPLE_RATE,
                "output_format": OUTPUT_FORMAT,
                "text_only": start.text_only,
                "resumed": self.resumed,
                "simulated": providers.simulated,
                "tools": sorted(self.tools.tools) if self.tools else [],
                "remembered": self.memory.remembered,
                "providers": {
                    "stt": f"{providers.stt.provider}/{providers.stt.model}",
                    "llm": f"{providers.chat.provider}/{providers.chat.model}",
                    "tts": f"{providers.tts.provider}/{providers.tts.model}",
                },
                "notes": providers.notes,
                "speech_detector": self.input.detector.detector if self.input else None,
                # what the visitor will hear: "espeak" or "tone" (the simulated voice), else the provider
                "speech_output": None if start.text_only else providers.tts.speech_output,
                "limits": {
                    "idle_timeout_s": self.assistant.idle_timeout_s,
                    "max_session_s": self.assistant.max_session_s,
                    "max_frame_bytes": MAX_FRAME_BYTES,
                },
            }
        )
        self.timer = asyncio.create_task(self._watch_time(), name=f"session-timer:{self.conversation_id}")
        if greeting and not self.resumed:
            await self._reply_with_text(greeting)

    async def _prepare_memory_and_tools(self) -> str:
        """Read what is remembered of the visitor and set up the tools; returns the greeting to speak."""
        assistant, tenant = self.assistant, self.recorder.tenant
        await self.memory.recall_visitor()
        tools = assistant_tools(assistant.tools, assistant.http_tools, can_forget_visitor=self.memory.remembering)
        if tools:
            context = ToolContext(
                conversation_id=self.conversation_id,
                visitor_id=self.visitor_id,
                assistant_id=assistant.id,
                time_zone=tenant.time_zone,
                business_hours=tenant.business_hours,
                run_db=self.recorder.call,
                transcript=lambda: [(m.role, m.content) for m in self.memory.history],
                end_conversation=self._end_after_reply,
                forget_visitor=self.memory.forget_visitor,
                transfer_call=self._transfer_after_reply if self.call and self.call.transfer else None,
            )
            self.tools = ToolBox(tools, context)
        return self.memory.greeting()

    def _turn_config(self, echo_cancellation: str) -> TurnConfig:
        """Without echo cancellation the reply leaks into the microphone: demand more speech to barge in."""
        turn = self.assistant.turn
        if echo_cancellation != "none":
            return turn
        return dataclasses.replace(turn, barge_in_min_ms=max(2 * turn.barge_in_min_ms, UNCANCELLED_ECHO_BARGE_IN_MS))

    async def end(self, reason: str, code: CloseCode, *, notify: bool = True, keep_conversation: bool = False) -> None:
        """End the session once: stop replies, tell the client, store everything, close.

        ``keep_conversation``: the REST API's text conversations outlive each request's session; the
        conversation stays open (and the visitor's profile is learnt) until ``…/end/`` ends it.
        """
        if self.ended:
            return
        self.ended = True
        SESSIONS_TOTAL.labels(reason).inc()
        for task in (self.turn_task, self.timer, self.quota.task, self.ending_task):
            if task and not task.done() and task is not asyncio.current_task():
                task.cancel()
        if self.active and not self.active.task.done():
            cut = self.active.reply.id
            await self._stop_active("session_end", notify=False, played_ms=None if notify else self._heard_at(cut))
        if not notify:  # the listener left: what was still playing at its end was not all heard
            self._settle_heard_at_end()
        if self.turn_end is not None:
            await self.turn_end.close()
        if notify:
            with contextlib.suppress(Exception):
                await self.transport.send_event({"type": "session.ended", "reason": reason})
        if self.started and not keep_conversation:
            self.recorder.end(reason)
        await self.quota.release()
        if notify:
            with contextlib.suppress(Exception):
                await self.transport.close(int(code))
        if self.started:  # after the close: the visitor never waits for memory
            await self.understanding.settle()  # bounded by UNDERSTANDING_TIMEOUT_S each
            await self.memory.finish(learn=not keep_conversation)
        await self.recorder.close()

    def _end_after_reply(self, reason: str) -> None:
        self.ending_reason = reason

    def _transfer_after_reply(self) -> None:
        self.ending_reason = EndReason.TRANSFERRED

    async def _end_once_heard(self, active: _ActiveReply) -> None:
        """The assistant ended the conversation (or hands the call over): let its last words be heard,
        then put the call through if that was asked, and close normally."""
        reason = self.ending_reason or EndReason.ASSISTANT_ENDED
        if (playback_end := active.reply.playback_end()) is not None:
            await asyncio.sleep(max(0.0, playback_end - time.monotonic()) + 0.2)
        if reason == EndReason.TRANSFERRED and self.call is not None and self.call.transfer is not None:
            self.transferring = True  # the carrier may end the stream before its answer to the transfer comes
            try:
                await self.call.transfer()
            except Exception:  # the caller is not left hanging silently: the call ends as it would have
                logger.exception("conversation %s: the transfer failed", self.conversation_id)
                self.transferring = False
                reason = EndReason.ERROR
        await self.end(reason, CloseCode.NORMAL)

    async def _watch_time(self) -> None:
        while not self.ended:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            busy = self._busy()
            if now - self.opened_at > self.assistant.max_session_s and not busy:
                await self.end(EndReason.MAX_DURATION, CloseCode.MAX_DURATION)
            elif not busy and now - self.last_activity > self.assistant.idle_timeout_s:
                if self.reminded:
                    await self.end(EndReason.IDLE_TIMEOUT, CloseCode.IDLE_TIMEOUT)
                else:
                    self.reminded = True
                    self.last_activity = now
                    await self._reply_with_text(IDLE_REMINDER)

    def _busy(self) -> bool:
        in_speech = self.input is not None and self.input.detector.in_speech
        turn_running = self.turn_task is not None and not self.turn_task.done()
        return (
            in_speech
            or turn_running
            or self._assistant_audible()
            or (self.active is not None and not self.active.task.done())
        )

    def _assistant_audible(self) -> bool:
        if self.active is None:
            return False
        if not self.active.task.done():
            return self.active.reply.first_audio_at is not None
        end = self.active.reply.playback_end()
        return end is not None and time.monotonic() < end

    # ---------------------------------------------------------------- visitor turns
    async def _speech_started(self, event: SpeechStarted) -> None:
        self.last_activity = time.monotonic()
        self.reminded = False
        await self.transport.send_event(
            {"type": "speech.started", "audio_ms": event.frame_index * 20, "barge_in": event.during_assistant_speech}
        )
        await self.interrupt("barge_in")

    async def _speech_stopped(self, event: SpeechStopped) -> None:
        assert self.input is not None
        self.last_activity = time.monotonic()
        endpoint_ms = self.input.endpoint_delay_ms(event)
        await self.transport.send_event(
            {"type": "speech.stopped", "audio_ms": event.frame_index * 20, "speech_ms": event.speech_ms}
        )
        previous = self.turn_task
        speculation = self.turn_end.take(event) if self.turn_end is not None else None
        spent = self.turn_end.spent() if self.turn_end is not None else None
        self.turn_task = asyncio.create_task(self._answer_speech(event, endpoint_ms, previous, speculation, spent))

    async def _answer_speech(
        self,
        event: SpeechStopped,
        endpoint_ms: float | None,
        previous: asyncio.Task[None] | None,
        speculation: asyncio.Task[Heard] | None = None,
        spent: Spent | None = None,
    ) -> None:
        """`spent`: the turn's speculative transcripts (semantic end of turn), billed with the turn."""
        detected_at, started_at = time.monotonic(), _now()
        if previous is not None and not previous.done():
            await asyncio.gather(previous, return_exceptions=True)  # the earlier utterance is stored first
        stt = self.providers.stt
        try:
            # Semantic end of turn: the transcript taken at the pause is this turn's (no new speech since).
            heard = await TurnEnd.result(speculation) if speculation is not None else None
            fresh_ms = 0
            if heard is None:
                fresh_ms = len(event.utterance) // BYTES_PER_MS
                heard = await transcribe(
                    stt, event.utterance, language=self.assistant.language, on_partial=self._send_partial
                )
        except ProviderError as exc:
            logger.warning("speech-to-text failed in %s: %s", self.conversation_id, exc)
            await self.transport.send_event(
                ProtocolError(
                    ErrorCode.SPEECH_TO_TEXT_FAILED, "Sorry, I could not make that out. Please say it again."
                ).as_event()
            )
            return
        text = heard.text
        stt_ms = (time.monotonic() - detected_at) * 1000
        await self.transport.send_event({"type": "transcript.final", "text": text, "input": "voice"})
        if not text:
            return
        understood = self.understanding.now(text)
        index = self.memory.remember(ChatMessage(role="user", content=text, emotion=understood.emotion))
        turn_id = self.recorder.turn(
            TurnRecord(
                role=Role.VISITOR,
                text=text,
                input_mode="voice",
                intent=understood.intent,
                emotion=understood.emotion,
                understood_by=understood.source,
                audio_pcm=event.utterance if self.recorder.tenant.record_audio else b"",
                started_at=started_at,
                ended_at=_now(),
                endpoint_delay_ms=endpoint_ms,
                stt_ms=stt_ms,
                audio_ms=event.speech_ms,
                provider=heard.served_by(stt)[0],
                model=heard.served_by(stt)[1],
                route=_visitor_route(heard, spent, fresh_ms),
            )
        )
        self.understanding.later(text, understood, turn_id, index)
        if self.turn_task is not asyncio.current_task() or (self.input and self.input.detector.in_speech):
            return  # the visitor is speaking again: answer the whole thought when they stop
        await self._reply_with_chat(detected_at, endpoint_ms=endpoint_ms, stt_ms=stt_ms)

    async def _send_partial(self, text: str) -> None:
        await self.transport.send_event({"type": "transcript.partial", "text": text})

    async def _typed(self, text: str, *, input_mode: str = "text") -> None:
        self.last_activity = time.monotonic()
        self.reminded = False
        await self.interrupt("text_input")
        detected_at = time.monotonic()
        await self.transport.send_event({"type": "transcript.final", "text": text, "input": input_mode})
        understood = self.understanding.now(text)
        index = self.memory.remember(ChatMessage(role="user", content=text, emotion=understood.emotion))
        turn_id = self.recorder.turn(
            TurnRecord(
                role=Role.VISITOR,
                text=text,
                input_mode=input_mode,
                started_at=_now(),
                ended_at=_now(),
                intent=understood.intent,
                emotion=understood.emotion,
                understood_by=understood.source,
            )
        )
        self.understanding.later(text, understood, turn_id, index)
        await self._reply_with_chat(detected_at, endpoint_ms=None, stt_ms=None)

    # ---------------------------------------------------------------- REST API (voice.api.conversations)
    async def handle_api_text(self, text: str) -> None:
        """A message of the REST API's text conversations: typed input, without the widget protocol's
        2,000-character cap (the API checks its own limit)."""
        if not self.started:
            raise ProtocolError(ErrorCode.NOT_STARTED, "send session.start first")
        await self._typed(text.strip())

    def _background(self, coroutine: Coroutine[object, object, None]) -> None:
        """Fire-and-forget a send from synchronous code, keeping a reference until it is done."""
        if self.ended:
            coroutine.close()
            return
        task = asyncio.create_task(coroutine)
        self._pending_sends.add(task)
        task.add_done_callback(self._pending_sends.discard)

    # ---------------------------------------------------------------- replies
    def _new_reply(
        self, *, detected_at: float | None = None, endpoint_ms: float | None = None, stt_ms: float | None = None
    ) -> Reply:
        style, pace = (
            voice_style(self.understanding.visitor_emotion) if self.assistant.voice_follows_emotion else ("", 1.0)
        )
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

    async def _reply_with_chat(self, detected_at: float, *, endpoint_ms: float | None, stt_ms: float | None) -> None:
        if not self.quota.allows_reply():  # a turn boundary past the hard cap: no more replies
            return
        reply = self._new_reply(detected_at=detected_at, endpoint_ms=endpoint_ms, stt_ms=stt_ms)
        messages = self.memory.messages(context=self._situation())
        pipeline = self._pipeline(reply)
        await self._launch(reply, lambda: pipeline.run_from_chat(self.providers.chat, messages, self.tools))

    def _situation(self) -> str:
        """What the model should know about now: the local time, and how to use its tools."""
        tenant = self.recorder.tenant
        local = datetime.now(ZoneInfo(tenant.time_zone))
        lines = [f"It is now {local:%A %d %B %Y, %H:%M} ({tenant.time_zone})."]
        if self.assistant.escalate_upset_visitors and self.understanding.visitor_emotion in UPSET:
            can_hand_off = self.tools is not None and "handoff" in self.tools.tools
            lines.append(upset_hint(self.understanding.visitor_emotion, can_hand_off=can_hand_off))
        if self.tools:
            lines.append(
                "Use your tools when they help. If a tool reports an error, tell the visitor briefly and go on."
            )
            if "search_knowledge" in self.tools.tools:
                lines.append(
                    "Answer questions about the business only from search_knowledge results; when it finds nothing, "
                    "say that you do not know."
                )
        return " ".join(lines)

    async def _reply_with_text(self, text: str) -> None:
        reply = self._new_reply()
        await self._launch(reply, lambda: self._pipeline(reply).run_from_text(text))

    def _pipeline(self, reply: Reply) -> ReplyPipeline:
        return ReplyPipeline(
            reply,
            tts=self.providers.tts,
            send_event=self.transport.send_event,
            send_audio=self.transport.send_audio,
        )

    async def _launch(self, reply: Reply, stages: Callable[[], Awaitable[None]]) -> None:
        # One reply at a time: a launch waiting for the previous reply to stop must not let another
        # launch slip in between (a typed message arriving while a spoken turn starts its reply).
        async with self._launching:
            await self.interrupt("superseded")
            if self.ended:
                return
            await self.transport.send_event({"type": "response.started", "response_id": reply.id})
            task = asyncio.create_task(self._run_reply(reply, stages))
            active = _ActiveReply(reply=reply, task=task)
            self.active = active
            self.replies[reply.id] = active
            if len(self.replies) > KEPT_REPLIES:  # late playback reports only ever concern the last few
                del self.replies[min(self.replies)]

    async def _run_reply(self, reply: Reply, stages: Callable[[], Awaitable[None]]) -> None:
        failed = False
        try:
            await stages()  # created here, so a reply cancelled before it starts leaves no coroutine behind
        except* ProviderError as group:
            error = group.exceptions[0]
            logger.warning("reply %s in %s failed: %s", reply.id, self.conversation_id, error)
            if isinstance(error, ProviderError) and error.route is not None and error.route.capability == "llm":
                reply.llm_route = error.route
            failed = True
        except* Exception:
            logger.exception("reply %s in %s crashed", reply.id, self.conversation_id)
            failed = True
        if failed:
            reply.failed = True
            await self._reply_failed()
        metrics = _metrics(reply)
        first_audio_ms = (reply.first_audio_at - reply.turn_detected_at) * 1000 if reply.first_audio_at else None
        await self.transport.send_event(
            {"type": "response.audio.done", "response_id": reply.id, "audio_ms": metrics["audio_ms"]}
        )
        await self.transport.send_event(
            {
                "type": "response.done",
                "response_id": reply.id,
                "text": reply.text,
                "status": "failed" if failed else "completed",
                "metrics": metrics,
            }
        )
        _observe_turn(reply, metrics, failed=failed)
        active = self.replies.get(reply.id)
        if active is None or not (reply.text or failed):
            self.ending_reason = ""  # a goodbye nobody heard ends nothing
            return  # nothing was said: no turn, no history entry
        heard = self._delivered(reply)
        if heard:
            active.history_index = self.memory.remember(ChatMessage(role="assistant", content=heard))
        if failed or not heard:
            self.ending_reason = ""
        if self.ending_reason and self.ending_task is None:
            self.ending_task = asyncio.create_task(self._end_once_heard(active), name=f"ending:{self.conversation_id}")
        self.memory.summarize_older_turns()
        active.turn_id = self.recorder.turn(
            self._assistant_turn(
                reply,
                heard=heard,
                interrupted=False,
                first_audio_ms=first_audio_ms,
                total_ms=metrics["total_ms"],
            )
        )
        self.quota.check_after(active.turn_id)
        self.last_activity = time.monotonic()

    def _delivered(self, reply: Reply) -> str:
        """What reached the visitor of a reply produced to its end, or to its failure: all of it when it was
        spoken in full, or shown (a widget shows every reply's text); a caller hears only what was spoken."""
        if not (reply.failed or reply.speech_failed) or self.call is None:
            return reply.text
        return reply.timeline.heard(reply.audio_sent_ms)

    async def _say_until_heard(self, text: str) -> None:
        """Say something and wait until the listener has heard it to its end."""
        await self._reply_with_text(text)
        active = self.active
        if active is not None:
            await asyncio.wait({active.task})
            if (playback_end := active.reply.playback_end()) is not None:
                await asyncio.sleep(max(0.0, playback_end - time.monotonic()))

    async def _reply_failed(self) -> None:
        await self.transport.send_event(
            ProtocolError(ErrorCode.REPLY_FAILED, "Sorry, I could not answer just now. Please try again.").as_event()
        )

    async def interrupt(self, reason: str) -> None:
        """Stop the reply the visitor is hearing or waiting for; keep only what they heard."""
        active = self.active
        if active is None:
            return
        running = not active.task.done()
        if not running and not self._assistant_audible():
            self.active = None
            return
        if reason == "barge_in":
            BARGE_INS.inc()
        await self._stop_active(reason)

    def _heard_at(self, reply_id: int) -> float | None:
        """What the transport knows the listener heard of a reply still playing at its end (a phone's
        marks: ``heard_ms_pending``); None when it knows nothing more than the session's pacing."""
        report = getattr(self.transport, "heard_ms_pending", None)
        return report(reply_id) if report is not None else None

    def _settle_heard_at_end(self) -> None:
        """Replies produced to their end but still queued at the listener's side when it left (a phone call
        hung up with audio in Twilio's buffer): keep only what the transport says was heard."""
        for reply_id, active in list(self.replies.items()):
            if not active.interrupted and active.task.done() and (heard := self._heard_at(reply_id)) is not None:
                self._played(reply_id, heard)

    async def _stop_active(self, reason: str, *, notify: bool = True, played_ms: float | None = None) -> None:
        active = self.active
        assert active is not None
        self.active = None
        active.interrupted = True
        self.ending_reason = ""  # a goodbye the visitor cut short does not end the conversation
        if self.ending_task is not None and self.ending_task is not asyncio.current_task():
            self.ending_task.cancel()
            self.ending_task = None
        reply = active.reply
        # `stopped` is checked right before every audio send, and a send never yields before its frame
        # is written: from this line on no frame of the reply can go out, so the client hears at once.
        reply.stopped = True
        running = not active.task.done()
        if running:
            active.task.cancel()
        if notify:
            await self.transport.send_event({"type": "response.interrupted", "response_id": reply.id, "reason": reason})
        if running:
            _, pending = await asyncio.wait({active.task}, timeout=STOP_TIMEOUT_S)
            if pending:  # a stage ignored its cancellation: never let that hold the session hostage
                logger.error("reply %s in %s did not stop within %s s", reply.id, self.conversation_id, STOP_TIMEOUT_S)
        heard = self._settle_heard(active, reply.played_estimate_ms() if played_ms is None else played_ms)
        if notify:
            if heard is not None:
                await self.transport.send_event(heard)
            if running:  # the reply's own end never came: this is its terminal event
                await self.transport.send_event(
                    {
                        "type": "response.done",
                        "response_id": reply.id,
                        "text": reply.text,
                        "status": "interrupted",
                        "reason": reason,
                        "metrics": _metrics(reply),
                    }
                )

    def _played(self, response_id: int, played_ms: float) -> None:
        active = self.replies.get(response_id)
        if active is None:
            return
        if not active.interrupted and not active.task.done():
            return  # a report while the reply is still being produced says nothing about its end
        # A report for a reply played to its end changes nothing; one for a cut reply corrects the estimate.
        if not (active.interrupted or played_ms + PLAYED_TOLERANCE_MS < active.reply.timeline.total_ms):
            return
        if (heard := self._settle_heard(active, played_ms)) is not None:
            self._background(self.transport.send_event(heard))

    def _assistant_turn(
        self,
        reply: Reply,
        *,
        heard: str,
        interrupted: bool,
        played_ms: float | None = None,
        first_audio_ms: float | None = None,
        total_ms: float | None = None,
    ) -> TurnRecord:
        chosen = reply.llm_route.chosen if reply.llm_route else None
        return TurnRecord(
            role=Role.ASSISTANT,
            text=reply.text,
            heard_text=heard,
            interrupted=interrupted,
            delivery=_delivery(reply, heard, interrupted=interrupted),
            started_at=reply.started_at_wall,
            ended_at=_now(),
            played_ms=played_ms,
            stt_ms=reply.stt_ms,
            endpoint_delay_ms=reply.endpoint_ms,
            llm_first_token_ms=reply.llm_first_token_ms,
            tts_first_byte_ms=reply.tts_first_byte_ms,
            first_audio_ms=first_audio_ms,
            total_ms=total_ms,
            audio_ms=reply.audio_sent_ms,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            tts_characters=reply.tts_characters,
            provider=chosen.provider if chosen else "",
            model=chosen.model if chosen else "",
            route=reply.route_record(),
            tool_calls=tuple(run.as_record() for run in reply.tool_runs),
        )

    def _settle_heard(self, active: _ActiveReply, played_ms: float) -> dict[str, object] | None:
        """Keep only what was heard of a cut reply (history and stored turn); returns the ``response.heard``
        to send, or None when the heard text did not change since the last one."""
        reply = active.reply
        heard = reply.timeline.heard(played_ms) if not reply.text_only else reply.text
        if active.history_index is None:
            active.history_index = self.memory.remember(ChatMessage(role="assistant", content=heard))
        else:
            self.memory.replace(active.history_index, ChatMessage(role="assistant", content=heard))
        if active.turn_id is None:
            active.turn_id = self.recorder.turn(
                self._assistant_turn(reply, heard=heard, interrupted=True, played_ms=played_ms)
            )
            self.quota.check_after(active.turn_id)
        else:
            self.recorder.heard(
                active.turn_id,
                heard_text=heard,
                played_ms=played_ms,
                interrupted=True,
                delivery=_delivery(reply, heard, interrupted=True),
            )
        if heard == active.heard_sent:
            return None
        active.heard_sent = heard
        return {"type": "response.heard", "response_id": reply.id, "text": heard, "played_ms": round(played_ms)}


_STAGES = {
    "endpoint_delay": "endpoint_ms",
    "stt": "stt_ms",
    "llm_first_token": "llm_first_token_ms",
    "tts_first_byte": "tts_first_byte_ms",
    "first_audio": "first_audio_ms",
    "total": "total_ms",
}


def _delivery(reply: Reply, heard: str, *, interrupted: bool) -> str:
    """What became of a reply (conversations.models.Delivery): a failure first, then whether it was heard."""
    if reply.failed:
        return Delivery.REPLY_FAILED
    if reply.speech_failed:
        return Delivery.SPEECH_FAILED
    if interrupted:
        return Delivery.INTERRUPTED if heard else Delivery.UNHEARD
    return Delivery.COMPLETE


def _metrics(reply: Reply) -> dict[str, float | None]:
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


def _observe_turn(reply: Reply, metrics: dict[str, object], *, failed: bool) -> None:
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


def _visitor_route(heard: Heard, spent: Spent | None, fresh_ms: int) -> dict[str, object]:
    """How a spoken turn was heard: the speech-to-text route, the audio every request for it sent (billed),
    and with semantic end of turn its verdict, whether the speculative transcript was used, and the requests."""
    route: dict[str, object] = {"stt": heard.route.as_dict()} if heard.route else {}
    route["stt_audio_ms"] = fresh_ms + (spent.audio_ms if spent is not None else 0)
    if spent is not None:
        route["turn_end"] = {
            "verdict": heard.verdict or spent.verdict or "none",
            "speculative": heard.speculative,
            "stt_requests": spent.requests + (1 if fresh_ms else 0),
        }
    return route


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
