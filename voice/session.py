"""A visitor's voice session: the parts of voice/parts wired together, one job each.

A frame goes forward, once through each part:

    transport → turns (input → speech detection → the visitor's turn) → replies → transport

    admission      every message is counted (flood and bad-input limits); the quota between turns
    turns          audio in, end of speech, transcript; typed text; each turn stored and answered
    understanding  emotion and intent of the visitor's turns (fast inline, the model in the background)
    memory         history, summaries, what is remembered of the visitor
    replies        one reply at a time, stopped by a barge-in; events and audio to the transport
    heard          what the listener heard of each reply: history and the stored turn keep only that
    timers         idle and length limits; ending or transferring once the last words were heard

Transport-agnostic: the widget's consumer (voice/consumers.py), the phone's (telephony/consumers.py) and
the REST API's text conversations (voice/api/text.py) hand it messages and give it a Transport to answer on.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from billing.sessions import SessionQuota
from conversations.actions import do_record_unheard_reply
from conversations.models import Channel, EndReason
from voice.metrics import SESSIONS_TOTAL
from voice.parts.admission import Admission, Quota
from voice.parts.heard import Settlement, SpokenReply
from voice.parts.memory import SessionMemory
from voice.parts.replies import Replies, situation
from voice.parts.timers import Ending, Timers
from voice.parts.turns import VisitorTurns
from voice.parts.understanding import TurnUnderstanding
from voice.pipeline.reply import Reply
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
from voice.providers.base import ChatMessage, estimate_tokens
from voice.providers.registry import SessionProviders
from voice.queries import AssistantSnapshot
from voice.recorder import ConversationRecorder
from voice.tools.base import ToolBox, ToolContext
from voice.tools.registry import assistant_tools


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
        self.conversation_id, self.visitor_id, self.origin = conversation_id, visitor_id, origin
        self.assistant, self.providers, self.transport, self.recorder = assistant, providers, transport, recorder
        self.resumed = resumed
        self.call = call  # a phone call: channel "phone", the caller's number and call SID are stored
        self.started = self.ended = False
        self.tools: ToolBox | None = None
        ended, name, send_event = (lambda: self.ended), conversation_id, transport.send_event

        # Beside the frame's path: what is let in, what is remembered, what is understood.
        self.admission = Admission(send_event=send_event, end=self.end)
        self.quota = Quota(quota, say_until_heard=self._say_until_heard, end=self.end, ended=ended, name=name)
        # A session that lasts one request (the REST API's) leaves summaries and the model's labels to a
        # Celery worker, so the request never waits for one.
        self.memory = SessionMemory(
            assistant,
            chat=providers.chat,
            recorder=recorder,
            conversation_id=conversation_id,
            visitor_id=visitor_id,
            in_worker=summaries_in_worker,
        )
        self.understanding = TurnUnderstanding(
            assistant,
            chat=providers.chat,
            recorder=recorder,
            history=self.memory.history,
            in_worker=summaries_in_worker,
            ended=ended,
            name=name,
        )
        self.ending = Ending(transfer=call.transfer if call else None, end=self.end, name=name)
        self.timers = Timers(assistant, busy=self._busy, say=self._say, end=self.end, ended=ended, name=name)

        # The frame's path: transport → turns → replies → transport; heard settles what was heard of each reply.
        self.heard = Settlement(
            memory=self.memory,
            recorder=recorder,
            quota=self.quota,
            send_event=send_event,
            heard_at=getattr(transport, "heard_ms_pending", None),
            phone=call is not None,
            ended=ended,
        )
        self.replies = Replies(
            assistant,
            providers=providers,
            send_event=send_event,
            send_audio=transport.send_audio,
            settlement=self.heard,
            visitor_emotion=lambda: self.understanding.visitor_emotion,
            after_reply=self._after_reply,
            on_cut=self.ending.cancel,
            ended=ended,
            name=name,
            unheard=self._unheard,
        )
        self.turns = VisitorTurns(
            assistant,
            stt=providers.stt,
            send_event=send_event,
            recorder=recorder,
            understanding=self.understanding,
            memory=self.memory,
            timers=self.timers,
            assistant_audible=self.replies.audible,
            interrupt=self.replies.interrupt,
            answer=self._answer,
            name=name,
            pause_heard=self._pause_heard if assistant.preemptive_replies else None,
            resumed=self.replies.discard,
        )

    # ---------------------------------------------------------------- what the transports read
    @property
    def history(self) -> list[ChatMessage]:
        """What was said and heard in this conversation (the model sees a composition of it)."""
        return self.memory.history

    @property
    def ending_reason(self) -> str:
        """Why the assistant is ending the conversation (its end_conversation tool); "" if it is not."""
        return self.ending.reason

    @property
    def transferring(self) -> bool:
        """The call is being (or was) put through to the transfer number: its stream ending is the transfer."""
        return self.ending.transferring

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
                await self.turns.typed(event.text)
            elif isinstance(event, ResponsePlayed):
                self.heard.played(event.response_id, event.played_ms)
            elif isinstance(event, ResponseCancel):
                await self.interrupt("cancelled")
            elif isinstance(event, SessionEnd):
                await self.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL)
        except ProtocolError as error:
            await self.admission.refuse(error)

    async def handle_audio(self, frame: bytes) -> None:
        if not await self._admit():
            return
        try:
            if not self.started:
                raise ProtocolError(ErrorCode.NOT_STARTED, "send session.start before audio")
            if self.turns.input is None:
                raise ProtocolError(ErrorCode.TEXT_ONLY_SESSION, "this session is text-only")
            check_audio_frame(frame)
        except ProtocolError as error:
            await self.admission.refuse(error)
            return
        await self.turns.hear(frame)

    # -- for transports that do not speak the widget protocol (telephony) --
    async def start(self, start: SessionStart) -> None:
        """Start as a widget's ``session.start`` would."""
        if not await self._admit():
            return
        try:
            await self._start(start)
        except ProtocolError as error:
            await self.admission.refuse(error)

    async def admit(self) -> bool:
        """Count a message against the session's flood limit: False when it must be dropped."""
        return await self._admit()

    async def reject(self, error: ProtocolError) -> None:
        """A message the transport could not read: answered (and counted) like a bad widget event."""
        if await self._admit():
            await self.admission.refuse(error)

    async def handle_keys(self, text: str) -> None:
        """What the caller typed on the phone's keypad, put in words ("The caller pressed 2")."""
        if not self.started or self.ended:
            return
        await self.turns.typed(text, input_mode="dtmf")

    def played(self, response_id: int, played_ms: float) -> None:
        """How much of a reply the listener heard, as a widget's ``response.played`` reports it."""
        if not self.ended:
            self.heard.played(response_id, played_ms)

    # -- the REST API's text conversations (voice.api.conversations) --
    async def handle_api_text(self, text: str) -> None:
        """A message of the REST API's text conversations: typed input, without the widget protocol's
        2,000-character cap (the API checks its own limit)."""
        if not self.started:
            raise ProtocolError(ErrorCode.NOT_STARTED, "send session.start first")
        await self.turns.typed(text.strip())

    async def _admit(self) -> bool:
        return not self.ended and await self.admission.admit()

    # ---------------------------------------------------------------- the wiring between parts
    async def _answer(
        self, detected_at: float, endpoint_ms: float | None, stt_ms: float | None, pause: int | None = None
    ) -> None:
        """A visitor's turn was stored: answer it, unless the quota says the session must end. A turn heard
        during its pause may have its reply ready (preemptive): it is released, not asked for again."""
        if not self.quota.allows_reply():  # a turn boundary past the hard cap: no more replies
            self.replies.discard()
            return
        if pause is not None and await self.replies.release(
            pause, detected_at=detected_at, endpoint_ms=endpoint_ms, stt_ms=stt_ms
        ):
            return
        messages = self.memory.messages(context=self._situation())
        await self.replies.chat(messages, self.tools, detected_at=detected_at, endpoint_ms=endpoint_ms, stt_ms=stt_ms)

    def _pause_heard(self, text: str, pause: int) -> None:
        """The visitor paused and their words so far are known: the reply starts now, held until the turn
        ends there (voice.parts.replies, preemptive replies)."""
        if self.ended or not self.quota.allows_reply():
            return
        emotion = self.understanding.peek(text).emotion  # this turn's, as the reply after it would hear it
        said = ChatMessage(role="user", content=text, emotion=emotion)
        messages = self.memory.messages(context=self._situation(emotion), pending=said)
        self.replies.prepare(messages, self.tools, pause=pause, emotion=emotion)

    def _unheard(self, reply: Reply, prompt_tokens: int) -> None:
        """A preemptive reply was thrown away: its tokens are billed (estimated when its usage never came)."""
        produced = bool(reply.llm_rounds)
        chosen = reply.llm_route.chosen if reply.llm_route else None
        self.recorder.call(
            do_record_unheard_reply,
            conversation_id=self.conversation_id,
            reply_key=uuid.uuid4().hex,
            llm_provider=chosen.provider if chosen else self.providers.chat.provider,
            llm_model=chosen.model if chosen else self.providers.chat.model,
            input_tokens=reply.input_tokens if produced else prompt_tokens,
            output_tokens=reply.output_tokens if produced else (estimate_tokens(reply.text) if reply.text else 0),
        )

    def _situation(self, emotion: str | None = None) -> str:
        return situation(
            self.assistant,
            time_zone=self.recorder.tenant.time_zone,
            visitor_emotion=self.understanding.visitor_emotion if emotion is None else emotion,
            tools=self.tools,
        )

    def _after_reply(self, spoken: SpokenReply | None, said: str) -> None:
        """A reply ended: an ending it asked for goes ahead if it was heard; older turns get summarised."""
        self.ending.after_reply(spoken if said else None)
        if spoken is not None:
            self.memory.summarize_older_turns()
            self.timers.touch()

    async def _say(self, text: str) -> None:
        await self.replies.say(text)

    async def _say_until_heard(self, text: str) -> None:
        await self.replies.say_until_heard(text)

    def _busy(self) -> bool:
        return self.turns.busy() or self.replies.audible() or self.replies.producing()

    async def interrupt(self, reason: str) -> None:
        """Stop the reply the visitor is hearing or waiting for; keep only what they heard."""
        await self.replies.interrupt(reason)

    # ---------------------------------------------------------------- session life
    async def _start(self, start: SessionStart) -> None:
        if self.started:
            raise ProtocolError(ErrorCode.ALREADY_STARTED, "the session has already started", event="session.start")
        self.started = True
        self.replies.text_only = start.text_only
        # Who the visitor is comes with the session (the widget's signed token, the API's conversation, the
        # call): never from session.start, which any client can fill in (docs/widget.md).
        if not start.text_only:
            self.turns.listen(start.sample_rate, start.echo_cancellation)
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
        await self.memory.recall_visitor()
        self.tools = self._toolbox()
        greeting = self.memory.greeting()
        await self.transport.send_event(self._created(start, greeting))
        self.timers.start()
        if greeting and not self.resumed:
            await self.replies.say(greeting)

    def _toolbox(self) -> ToolBox | None:
        assistant, tenant = self.assistant, self.recorder.tenant
        tools = assistant_tools(assistant.tools, assistant.http_tools, can_forget_visitor=self.memory.remembering)
        if not tools:
            return None
        context = ToolContext(
            conversation_id=self.conversation_id,
            visitor_id=self.visitor_id,
            assistant_id=assistant.id,
            time_zone=tenant.time_zone,
            business_hours=tenant.business_hours,
            run_db=self.recorder.call,
            transcript=lambda: [(m.role, m.content) for m in self.memory.history],
            end_conversation=self.ending.end_after_reply,
            forget_visitor=self.memory.forget_visitor,
            transfer_call=self.ending.transfer_after_reply if self.call and self.call.transfer else None,
        )
        return ToolBox(tools, context)

    def _created(self, start: SessionStart, greeting: str) -> dict[str, object]:
        providers, detector = self.providers, self.turns.input.detector if self.turns.input else None
        return {
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
            "speech_detector": detector.detector if detector else None,
            # what the visitor will hear: "espeak" or "tone" (the simulated voice), else the provider
            "speech_output": None if start.text_only else providers.tts.speech_output,
            "limits": {
                "idle_timeout_s": self.assistant.idle_timeout_s,
                "max_session_s": self.assistant.max_session_s,
                "max_frame_bytes": MAX_FRAME_BYTES,
            },
        }

    async def end(self, reason: str, code: CloseCode, *, notify: bool = True, keep_conversation: bool = False) -> None:
        """End the session once: stop replies, tell the client, store everything, close.

        ``keep_conversation``: the REST API's text conversations outlive each request's session; the
        conversation stays open (and the visitor's profile is learnt) until ``…/end/`` ends it.
        """
        if self.ended:
            return
        self.ended = True
        SESSIONS_TOTAL.labels(reason).inc()
        for task in (self.turns.task, self.timers.task, self.quota.task, self.ending.task):
            if task and not task.done() and task is not asyncio.current_task():
                task.cancel()
        if self.replies.producing():
            assert self.replies.active is not None
            cut = self.replies.active.reply.id
            await self.replies.stop("session_end", notify=False, played_ms=None if notify else self.heard.heard_at(cut))
        if not notify:  # the listener left: what was still playing at its end was not all heard
            self.heard.settle_at_end()
        await self.turns.close()
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
