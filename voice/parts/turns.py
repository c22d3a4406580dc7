"""The visitor's turns. Spoken: audio in (voice.pipeline.input: resampling, 20 ms frames, speech
detection), semantic end of turn when the assistant has it on (voice.pipeline.turn_end), then at the end
of speech the transcript; typed: the text (or the phone's keypad, in words). Either way the turn is
understood, remembered and stored, and the session's ``answer`` is asked for a reply."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from conversations.actions import TurnRecord
from conversations.models import Role
from voice.audio.vad import SpeechPaused, SpeechStarted, SpeechStopped, TurnConfig
from voice.parts.admission import SendEvent
from voice.parts.memory import SessionMemory
from voice.parts.timers import Timers
from voice.parts.understanding import TurnUnderstanding
from voice.pipeline.input import AudioInput
from voice.pipeline.transcription import COMMIT_AFTER_MS, TurnTranscription
from voice.pipeline.turn_end import Heard, Spent, TurnEnd
from voice.protocol import ErrorCode, ProtocolError
from voice.providers.base import ChatMessage, ProviderError, SpeechToText
from voice.queries import AssistantSnapshot
from voice.recorder import ConversationRecorder

logger = logging.getLogger("voice.session")  # the session's log lines keep their logger name

UNCANCELLED_ECHO_BARGE_IN_MS = 600
# Ended turns still waiting for their answer (each waits for the one before) that may keep their stream
# open: past that, a new turn is transcribed in one request at its end. A client sending audio faster
# than it is spoken ends turns faster than they are answered; each must not hold a provider connection.
MAX_WAITING_STREAMS = 2

# Ask for a reply to the turn just stored: when its end was detected, what hearing it took, and the pause
# (its last voiced frame) whose transcript it is when it was heard during a pause (a reply may have
# started then: voice.parts.replies' preemptive replies), else None.
Answer = Callable[[float, float | None, float | None, int | None], Awaitable[None]]
# A transcript of the turn so far, during the pause after its last voiced frame.
PauseHeard = Callable[[str, int], None]


class VisitorTurns:
    def __init__(
        self,
        assistant: AssistantSnapshot,
        *,
        stt: SpeechToText,
        send_event: SendEvent,
        recorder: ConversationRecorder,
        understanding: TurnUnderstanding,
        memory: SessionMemory,
        timers: Timers,
        assistant_audible: Callable[[], bool],
        interrupt: Callable[[str], Awaitable[None]],
        answer: Answer,
        name: str,
        pause_heard: PauseHeard | None = None,
        resumed: Callable[[], None] | None = None,
    ) -> None:
        self.assistant, self.stt, self.send_event, self.recorder = assistant, stt, send_event, recorder
        self.understanding, self.memory, self.timers = understanding, memory, timers
        self.assistant_audible, self.interrupt, self.answer, self.name = assistant_audible, interrupt, answer, name
        self.pause_heard, self.resumed = pause_heard, resumed
        self.input: AudioInput | None = None  # None: a text-only session
        self.turn_end: TurnEnd | None = None  # what happens at pauses (semantic end of turn, preemptive replies)
        self.transcription: TurnTranscription | None = None  # the turn in progress's (from speech start)
        # Ended turns' transcriptions not closed yet (their answer is under way): closed by ``close`` too,
        # even when the session ends before an answer ran its own ``finally``.
        self._ending: set[TurnTranscription] = set()
        self.task: asyncio.Task[None] | None = None  # the spoken turn being heard and answered
        self.closed = False

    def listen(self, sample_rate: int, echo_cancellation: str) -> None:
        """Take audio from now on: at the client's sample rate, with its echo cancellation."""
        self.input = AudioInput(sample_rate, self._turn_config(echo_cancellation))
        self.turn_end = TurnEnd(
            self.stt,
            self.input.detector,
            self.input.config,
            language=self.assistant.language,
            on_heard=self._pause_heard if self.pause_heard is not None else None,
            on_dropped=self.resumed,
        )

    @property
    def sample_rate(self) -> int:
        """The rate of the spoken turns' audio (the session's hearing rate: voice.pipeline.input)."""
        assert self.input is not None
        return self.input.sample_rate

    def in_speech(self) -> bool:
        return self.input is not None and self.input.detector.in_speech

    def busy(self) -> bool:
        return self.in_speech() or (self.task is not None and not self.task.done())

    async def close(self) -> None:
        self.closed = True
        if self.turn_end is not None:
            await self.turn_end.close()
        transcription, self.transcription = self.transcription, None
        ending, self._ending = self._ending, set()
        for open_one in (transcription, *ending):
            if open_one is not None:
                await open_one.ended()

    # ---------------------------------------------------------------- spoken
    async def hear(self, frame: bytes) -> None:
        """One frame of the visitor's audio: input → speech detection → the turn's events."""
        assert self.input is not None
        assert self.turn_end is not None
        detector = self.input.detector
        detector.assistant_speaking = self.assistant_audible()
        for event in await self.input.listen(frame):
            if isinstance(event, SpeechStarted):
                await self._speech_started(event)
            elif isinstance(event, SpeechPaused):
                if self.transcription is not None:
                    await self.transcription.feed(event.utterance)  # the commit covers the pause
                self.turn_end.paused(event)
            elif isinstance(event, SpeechStopped):
                await self._speech_stopped(event)
        transcription = self.transcription
        if transcription is not None and transcription.streaming and detector.in_speech:
            await transcription.feed_more(detector.utterance_since(transcription.fed))  # every frame of the turn
            if detector.silence_ms >= COMMIT_AFTER_MS:
                transcription.commit(detector.last_voiced)
        self.turn_end.check()

    async def _speech_started(self, event: SpeechStarted) -> None:
        self.timers.visitor_active()
        await self.send_event(
            {"type": "speech.started", "audio_ms": event.frame_index * 20, "barge_in": event.during_assistant_speech}
        )
        await self.interrupt("barge_in")  # first: the visitor must hear the assistant stop at once
        if self.closed:  # the session ended meanwhile: no stream that nobody would close
            return
        language, rate = self.assistant.language, self.sample_rate
        if sum(waiting.streaming for waiting in self._ending) >= MAX_WAITING_STREAMS:
            self.transcription = TurnTranscription(self.stt, language=language, sample_rate=rate)
        else:
            self.transcription = await TurnTranscription.begin(
                self.stt, language=language, pre_roll=event.pre_roll, sample_rate=rate
            )
        if self.turn_end is not None:  # this turn's pauses are transcribed from its stream
            self.turn_end.transcription = self.transcription

    async def _speech_stopped(self, event: SpeechStopped) -> None:
        assert self.input is not None
        self.timers.touch()
        endpoint_ms = self.input.endpoint_delay_ms(event)
        await self.send_event(
            {"type": "speech.stopped", "audio_ms": event.frame_index * 20, "speech_ms": event.speech_ms}
        )
        previous = self.task
        assert self.turn_end is not None
        speculation = self.turn_end.take(event)
        spent = self.turn_end.spent()
        transcription, self.transcription = self.transcription, None
        if transcription is None:  # a turn always starts with SpeechStarted; never without a transcription
            transcription = TurnTranscription(self.stt, language=self.assistant.language, sample_rate=self.sample_rate)
        self._ending.add(transcription)
        self.task = asyncio.create_task(
            self._answer_speech(event, endpoint_ms, previous, transcription, speculation, spent)
        )

    async def _answer_speech(
        self,
        event: SpeechStopped,
        endpoint_ms: float | None,
        previous: asyncio.Task[None] | None,
        transcription: TurnTranscription,
        speculation: asyncio.Task[Heard] | None,
        spent: Spent,
    ) -> None:
        """`spent`: the turn's speculative transcripts at its pauses, billed with the turn."""
        detected_at, started_at = time.monotonic(), datetime.now(UTC)
        if previous is not None and not previous.done():
            await asyncio.gather(previous, return_exceptions=True)  # the earlier utterance is stored first
        stt = self.stt
        fresh_ms = 0
        try:
            # The transcript taken at the pause is this turn's (no new speech since).
            heard = await TurnEnd.result(speculation) if speculation is not None else None
            if heard is None:
                text, route, fresh_ms = await transcription.heard(
                    event.utterance, ended_at=event.last_voiced, on_partial=self._send_partial
                )
                heard = Heard(text=text, route=route)
        except ProviderError as exc:
            logger.warning("speech-to-text failed in %s: %s", self.name, exc)
            await self.send_event(
                ProtocolError(
                    ErrorCode.SPEECH_TO_TEXT_FAILED, "Sorry, I could not make that out. Please say it again."
                ).as_event()
            )
            return
        finally:
            fresh_ms += await transcription.ended()  # a streamed turn's audio, billed once
            self._ending.discard(transcription)
        text = heard.text
        stt_ms = (time.monotonic() - detected_at) * 1000
        await self.send_event({"type": "transcript.final", "text": text, "input": "voice"})
        if not text:
            return
        understood = self.understanding.now(text)
        index = self.memory.remember(ChatMessage(role="user", content=text, emotion=understood.emotion))
        stt_provider, stt_model = heard.served_by(stt)
        turn_id = self.recorder.turn(
            TurnRecord(
                role=Role.VISITOR,
                text=text,
                input_mode="voice",
                intent=understood.intent,
                emotion=understood.emotion,
                understood_by=understood.source,
                audio_pcm=event.utterance if self.recorder.tenant.record_audio else b"",
                audio_rate=self.sample_rate,
                started_at=started_at,
                ended_at=datetime.now(UTC),
                endpoint_delay_ms=endpoint_ms,
                stt_ms=stt_ms,
                audio_ms=event.speech_ms,
                provider=stt_provider,
                model=stt_model,
                route=visitor_route(heard, spent, fresh_ms),
            )
        )
        self.understanding.later(text, understood, turn_id, index)
        if self.task is not asyncio.current_task() or self.in_speech():
            if self.resumed is not None:
                self.resumed()  # a reply started at the pause answers only part of the thought
            return  # the visitor is speaking again: answer the whole thought when they stop
        await self.answer(detected_at, endpoint_ms, stt_ms, event.last_voiced if heard.speculative else None)

    async def _send_partial(self, text: str) -> None:
        await self.send_event({"type": "transcript.partial", "text": text})

    def _pause_heard(self, heard: Heard, last_voiced: int) -> None:
        """A transcript during a pause: the session may start the reply (held until the turn ends)."""
        assert self.pause_heard is not None
        if self.task is None or self.task.done():  # the previous turn is answered: nothing else to wait for
            self.pause_heard(heard.text, last_voiced)

    def _turn_config(self, echo_cancellation: str) -> TurnConfig:
        """Without echo cancellation the reply leaks into the microphone: demand more speech to barge in."""
        turn = self.assistant.turn
        if echo_cancellation != "none":
            return turn
        return dataclasses.replace(turn, barge_in_min_ms=max(2 * turn.barge_in_min_ms, UNCANCELLED_ECHO_BARGE_IN_MS))

    # ---------------------------------------------------------------- typed
    async def typed(self, text: str, *, input_mode: str = "text") -> None:
        self.timers.visitor_active()
        await self.interrupt("text_input")
        detected_at = time.monotonic()
        await self.send_event({"type": "transcript.final", "text": text, "input": input_mode})
        understood = self.understanding.now(text)
        index = self.memory.remember(ChatMessage(role="user", content=text, emotion=understood.emotion))
        turn_id = self.recorder.turn(
            TurnRecord(
                role=Role.VISITOR,
                text=text,
                input_mode=input_mode,
                started_at=datetime.now(UTC),
                ended_at=datetime.now(UTC),
                intent=understood.intent,
                emotion=understood.emotion,
                understood_by=understood.source,
            )
        )
        self.understanding.later(text, understood, turn_id, index)
        await self.answer(detected_at, None, None, None)


def visitor_route(heard: Heard, spent: Spent | None, fresh_ms: int) -> dict[str, object]:
    """How a spoken turn was heard: the speech-to-text route, the audio every request for it sent (billed),
    and with semantic end of turn its verdict, whether the speculative transcript was used, and the requests."""
    route: dict[str, object] = {"stt": heard.route.as_dict()} if heard.route else {}
    route["stt_audio_ms"] = fresh_ms + (spent.audio_ms if spent is not None else 0)
    if spent is not None and (spent.requests or heard.speculative):
        route["turn_end"] = {
            "verdict": heard.verdict or spent.verdict or "none",
            "speculative": heard.speculative,
            "stt_requests": spent.requests + (1 if fresh_ms else 0),
        }
    return route
