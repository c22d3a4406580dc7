"""One assistant reply as async stages joined by queues:

    chat model ─deltas→ sentence aggregation ─sentences→ text-to-speech ─chunks→ paced audio out

Each stage has one job. They run as one task group; interrupting the reply marks it stopped (the
audio stage checks that right before every send) and cancels all of them.

A reply may be *held* (a preemptive reply, started before the visitor's turn ended: voice.parts.replies):
its stages run, but its first audio and its tool calls wait until ``Reply.hold`` is set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from voice.audio.resample import at_rate
from voice.protocol import OUTPUT_SAMPLE_RATE, ErrorCode, ProtocolError, audio_frame
from voice.providers.base import (
    ChatMessage,
    ChatModel,
    ProviderError,
    RouteLog,
    TextDelta,
    TextToSpeech,
    ToolCall,
    ToolSpec,
    Usage,
)
from voice.text.alignment import SpeechTimeline
from voice.text.sentences import SentenceAggregator
from voice.tools.base import ToolBox, ToolRun

logger = logging.getLogger(__name__)

PACING_LEAD_MS = 200.0  # audio sent ahead of real time: covers network jitter, little to drop on interruption
# Synthesized audio goes out in messages of at most this much (pieces that queued up are joined):
# small enough for even pacing, large enough that a session's messages stay few (each costs Twisted
# two epoll changes). Interrupting is not limited by it: the client drops whatever it has queued.
MAX_CHUNK_MS = 200
_CHUNK_BYTES = OUTPUT_SAMPLE_RATE * 2 * MAX_CHUNK_MS // 1000
DELTA_INTERVAL_S = 0.1  # reply text: at most one delta message per interval
MAX_ROUNDS = 3  # model calls per reply; tools are offered on all but the last
FILLER_AFTER_S = 0.7  # a tool round slower than this gets a spoken filler (once per reply)
FILLER = "One moment while I check that."
_END = None

SendEvent = Callable[[dict[str, object]], Awaitable[None]]
SendAudio = Callable[[bytes], Awaitable[None]]


@dataclass(slots=True)
class Reply:
    """The state of one reply, shared by its stages and read by the session."""

    id: int
    voice: str
    speed: float
    text_only: bool
    style: str = ""  # how to say it, for voices that take instructions (the visitor's emotion may set it)
    started_at: float = field(default_factory=time.monotonic)
    # The visitor's turn this reply answers: when its end was detected, and what that took.
    turn_detected_at: float = field(default_factory=time.monotonic)
    endpoint_ms: float | None = None
    stt_ms: float | None = None
    started_at_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    text: str = ""
    timeline: SpeechTimeline = field(default_factory=SpeechTimeline)
    first_audio_at: float | None = None
    audio_sent_ms: float = 0.0
    llm_first_token_ms: float | None = None
    llm_first_sentence_ms: float | None = None
    tts_first_byte_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    tts_characters: int = 0
    speech_failed: bool = False  # text-to-speech failed: the rest of the reply goes out as text only
    failed: bool = False  # the reply itself failed (the language model): set by the session
    tool_runs: list[ToolRun] = field(default_factory=list)
    # Tokens per model round (tool rounds may be answered by different models): billed to each.
    llm_rounds: list[dict[str, object]] = field(default_factory=list)
    filler_spoken: bool = False
    llm_route: RouteLog | None = None  # how the chat model was chosen (None for fixed text)
    tts_route: RouteLog | None = None  # the first sentence's, or a later one that needed a failover
    stopped: bool = False  # set when the reply is interrupted: from then on not one more frame is sent
    # A preemptive reply: produced before the turn ended, sent from the moment this is set (None: not held).
    hold: asyncio.Event | None = None
    ready_at: float | None = None  # when a held reply's first audio was ready to go

    def route_record(self) -> dict[str, object]:
        routes = {"llm": self.llm_route, "tts": self.tts_route}
        record: dict[str, object] = {name: route.as_dict() for name, route in routes.items() if route is not None}
        if len(self.llm_rounds) > 1:
            record["llm_rounds"] = self.llm_rounds
        record.update(self.preemption())
        return record

    def preemption(self) -> dict[str, float | bool]:
        """For a reply started before the turn ended (held): that it was, how long before the turn's end it
        started, and how long its first audio was ready before (0 when it was not ready yet). {} otherwise."""
        if self.hold is None:
            return {}
        ready = (self.turn_detected_at - self.ready_at) * 1000 if self.ready_at is not None else 0.0
        return {
            "preemptive": True,
            "started_before_turn_end_ms": round(max(0.0, (self.turn_detected_at - self.started_at) * 1000), 1),
            "ready_before_turn_end_ms": round(max(0.0, ready), 1),
        }

    def played_estimate_ms(self, now: float | None = None) -> float:
        """What the client has played by now, from the pacing: it plays from the first chunk on, in real time."""
        if self.first_audio_at is None:
            return 0.0
        elapsed = ((now or time.monotonic()) - self.first_audio_at) * 1000
        return max(0.0, min(self.audio_sent_ms, elapsed))

    def playback_end(self) -> float | None:
        """When the client will have played everything sent so far (monotonic seconds)."""
        if self.first_audio_at is None:
            return None
        return self.first_audio_at + self.audio_sent_ms / 1000


class ReplyPipeline:
    """Runs the stages of one reply. ``run_from_chat`` for model replies, ``run_from_text`` for fixed text."""

    def __init__(
        self,
        reply: Reply,
        *,
        tts: TextToSpeech,
        send_event: SendEvent,
        send_audio: SendAudio,
    ) -> None:
        self.reply = reply
        self.tts = tts
        self.send_event = send_event
        self.send_audio = send_audio
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)

    async def run_from_chat(
        self, chat: ChatModel, messages: Sequence[ChatMessage], tools: ToolBox | None = None
    ) -> None:
        await self._run(self._converse(chat, list(messages), tools))

    async def run_from_text(self, text: str) -> None:
        async def fixed() -> None:
            self.reply.text = text
            await self._send_delta(text)
            for sentence in _split_sentences(text):
                await self._sentences.put(sentence)
            await self._sentences.put(_END)

        await self._run(fixed())

    async def _run(self, generate: Awaitable[None]) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(generate)
            group.create_task(self._synthesize())
            group.create_task(self._play())

    # -- stage 1: the chat model's text, aggregated into speakable sentences ------------------
    async def _converse(self, chat: ChatModel, messages: list[ChatMessage], tools: ToolBox | None) -> None:
        """Model rounds: tool calls are run and their results handed back, up to MAX_ROUNDS; the last
        round offers no tools, so the visitor always gets an answer in words."""
        aggregator = SentenceAggregator()
        for round_ in range(1, MAX_ROUNDS + 1):
            offered = tools.specs if tools and round_ < MAX_ROUNDS else ()
            said_before = len(self.reply.text)
            calls = await self._generate(chat, messages, aggregator, offered)
            if not calls:
                break
            said = self.reply.text[said_before:]
            for sentence in aggregator.flush():  # what the model said before calling a tool is spoken now
                await self._put_sentence(sentence)
            assert tools is not None
            runs = await self._run_tools(tools, calls, round_)
            # What the model said before calling (spoken already) stays in its context: it does not repeat it.
            messages.append(ChatMessage(role="assistant", content=said, tool_calls=tuple(calls)))
            messages.extend(
                ChatMessage(role="tool", content=run.result, tool_call_id=call.id)
                for call, run in zip(calls, runs, strict=True)
            )
            if self.reply.text and not self.reply.text.endswith((" ", "\n")):
                self.reply.text += " "
        for sentence in aggregator.flush():
            await self._put_sentence(sentence)
        # No `finally`: a failed or cancelled stage ends the whole group, so nobody waits for the end mark.
        await self._sentences.put(_END)

    async def _run_tools(self, tools: ToolBox, calls: list[ToolCall], round_: int) -> list[ToolRun]:
        """Run one round's calls side by side; a spoken filler covers a wait longer than a moment.

        Each run is recorded as it finishes, so a reply interrupted meanwhile still stores what its
        tools did; the calls still running are cancelled with it."""
        runs: dict[int, ToolRun] = {}
        if self.reply.hold is not None:  # a tool may act (book, hand off, end): never before the turn is the visitor's
            await self.reply.hold.wait()

        async def run(index: int, call: ToolCall) -> None:
            runs[index] = result = await tools.run(call, round_=round_)
            self.reply.tool_runs.append(result)

        tasks = [asyncio.create_task(run(index, call)) for index, call in enumerate(calls)]
        try:
            _, pending = await asyncio.wait(tasks, timeout=FILLER_AFTER_S)
            if pending and not self.reply.filler_spoken:
                self.reply.filler_spoken = True
                self.reply.text += FILLER + " "
                await self._send_delta(FILLER + " ")
                await self._put_sentence(FILLER)
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        for index in range(len(calls)):
            await self.send_event(
                {
                    "type": "response.tool",
                    "response_id": self.reply.id,
                    "name": runs[index].name,
                    "status": "error" if runs[index].is_error else "ok",
                    "duration_ms": round(runs[index].duration_ms),
                }
            )
        return [runs[index] for index in range(len(calls))]

    async def _generate(
        self,
        chat: ChatModel,
        messages: Sequence[ChatMessage],
        aggregator: SentenceAggregator,
        tools: Sequence[ToolSpec],
    ) -> list[ToolCall]:
        """One model call: text streamed on as sentences; the tool calls it asked for are returned."""
        reply = self.reply
        unsent, last_sent = "", 0.0
        calls: list[ToolCall] = []
        async for event in chat.stream(messages, tools=tools):
            if isinstance(event, TextDelta):
                if reply.llm_first_token_ms is None:
                    reply.llm_first_token_ms = _ms_since(reply.started_at)
                reply.text += event.text
                unsent += event.text
                sentences = aggregator.push(event.text)
                # Tokens are coalesced into at most one delta per DELTA_INTERVAL_S: a model streams 50+
                # tokens a second, and every WebSocket message costs the server as much as an audio frame.
                if sentences or time.monotonic() - last_sent >= DELTA_INTERVAL_S:
                    await self._send_delta(unsent)
                    unsent, last_sent = "", time.monotonic()
                for sentence in sentences:
                    await self._put_sentence(sentence)
            elif isinstance(event, ToolCall):
                calls.append(event)
            elif isinstance(event, Usage):
                reply.input_tokens += event.input_tokens
                reply.output_tokens += event.output_tokens
                chosen = reply.llm_route.chosen if reply.llm_route else None
                reply.llm_rounds.append(
                    {
                        "provider": chosen.provider if chosen else chat.provider,
                        "model": chosen.model if chosen else chat.model,
                        "input_tokens": event.input_tokens,
                        "output_tokens": event.output_tokens,
                    }
                )
            elif isinstance(event, RouteLog):
                reply.llm_route = event
        if unsent:
            await self._send_delta(unsent)
        return calls

    async def _send_delta(self, text: str) -> None:
        await self.send_event({"type": "response.text.delta", "response_id": self.reply.id, "delta": text})

    async def _put_sentence(self, sentence: str) -> None:
        if self.reply.llm_first_sentence_ms is None:
            self.reply.llm_first_sentence_ms = _ms_since(self.reply.started_at)
        await self._sentences.put(sentence)

    # -- stage 2: text-to-speech, sentence by sentence, resampled to the output rate ----------
    async def _synthesize(self) -> None:
        reply = self.reply
        while (sentence := await self._sentences.get()) is not _END:
            if reply.text_only or reply.speech_failed:
                continue
            try:
                await self._speak(sentence)
            except Exception as exc:  # whatever broke in speech, the reply goes on as text
                reply.speech_failed = True
                if isinstance(exc, ProviderError):
                    self._note_tts_route(exc.route)
                    logger.warning("text-to-speech failed for reply %s: %s", reply.id, exc)
                else:  # not a provider's answer but a fault here (a voice's odd audio): keep the traceback
                    logger.exception("text-to-speech crashed for reply %s", reply.id)
                await self.send_event(
                    ProtocolError(
                        ErrorCode.SPEECH_FAILED, "Speech is unavailable right now; the reply continues as text."
                    ).as_event()
                )
        await self._chunks.put(_END)

    async def _speak(self, sentence: str) -> None:
        reply = self.reply
        requested = time.monotonic()
        first = True
        speech = self.tts.synthesize(sentence, voice=reply.voice, speed=reply.speed, style=reply.style)
        async for pcm in _sliced(at_rate(speech, self.tts.sample_rate, OUTPUT_SAMPLE_RATE)):
            if reply.tts_first_byte_ms is None:
                reply.tts_first_byte_ms = _ms_since(requested)
            if first:
                reply.timeline.add(sentence, len(pcm), OUTPUT_SAMPLE_RATE)
                first = False
            else:
                reply.timeline.extend_audio(len(pcm))
            await self._chunks.put(pcm)
        reply.tts_characters += len(sentence)
        self._note_tts_route(getattr(self.tts, "last_route", None))

    def _note_tts_route(self, route: RouteLog | None) -> None:
        if route is not None and (self.reply.tts_route is None or len(route.attempts) > 1):
            self.reply.tts_route = route

    # -- stage 3: paced audio out: real time plus a short lead, every chunk tagged with its reply --
    async def _play(self) -> None:
        reply, chunks = self.reply, self._chunks
        pcm = await chunks.get()
        if reply.hold is not None and not reply.hold.is_set():
            reply.ready_at = time.monotonic() if pcm is not _END else None
            await reply.hold.wait()
        while pcm is not _END:
            if reply.first_audio_at is None:
                reply.first_audio_at = time.monotonic()
            else:
                ahead_ms = reply.audio_sent_ms - (time.monotonic() - reply.first_audio_at) * 1000
                if ahead_ms > PACING_LEAD_MS:
                    await asyncio.sleep((ahead_ms - PACING_LEAD_MS) / 1000)
            # Audio the voice produced while we waited joins this message, up to MAX_CHUNK_MS: a voice
            # that streams small pieces faster than real time costs a few messages a second, not dozens.
            following, held = None, False
            while not chunks.empty():
                following = chunks.get_nowait()
                if following is _END or len(pcm) + len(following) > _CHUNK_BYTES:
                    held = True  # the end mark, or a piece that starts the next message
                    break
                pcm += following
            if reply.stopped:  # interrupted: the session said so to the client already, before cancelling us
                return
            await self.send_audio(audio_frame(reply.id, pcm))
            reply.audio_sent_ms += len(pcm) / 2 / OUTPUT_SAMPLE_RATE * 1000
            pcm = following if held else await chunks.get()


async def _sliced(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Whole-sample output-rate PCM in pieces of at most MAX_CHUNK_MS."""
    async for pcm in chunks:
        for offset in range(0, len(pcm), _CHUNK_BYTES):
            yield pcm[offset : offset + _CHUNK_BYTES]


def _split_sentences(text: str) -> list[str]:
    aggregator = SentenceAggregator()
    return aggregator.push(text) + aggregator.flush()


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000
