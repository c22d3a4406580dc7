"""Simulated providers: no keys, no network, fixed and configurable latencies, real audio.

They make the product usable without provider keys (demos, development) and give load tests a
provider whose own latency is known exactly, so the platform's overhead can be measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import shutil
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from voice.audio.frames import bytes_to_ms
from voice.memory import names_said, simulated_answer
from voice.providers.base import (
    STREAM_SAMPLE_RATE,
    ChatEvent,
    ChatMessage,
    ChatModel,
    ErrorKind,
    ProviderError,
    SpeechToText,
    TextDelta,
    TextToSpeech,
    ToolCall,
    ToolSpec,
    Transcript,
    TranscriptionStream,
    Usage,
    estimate_tokens,
)
from voice.understanding import simulated_answer as simulated_understanding

SIMULATED = "simulated"
ESPEAK, TONE = "espeak", "tone"  # what the simulated voice sounds like


@dataclass(frozen=True, slots=True)
class SimulatedLatency:
    stt_ms: float = 150.0
    stt_stream_ms: float = 60.0  # a streaming commit: the audio is already there, only the last words wait
    stt_streams: bool = True  # False: speech-to-text by batch requests only (as before streaming)
    llm_first_token_ms: float = 300.0
    llm_tokens_per_s: float = 60.0
    tts_first_byte_ms: float = 120.0
    tts_realtime_factor: float = 8.0  # audio produced this many times faster than real time


_REPLIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\b(hours?|open|opening|close|closing|saturday|sunday|today)\b"),
        "We are open from nine in the morning to ten at night, Monday to Saturday. "
        "On Sundays we open at eleven. Is there anything else I can help with?",
    ),
    (
        re.compile(r"\b(book|booking|table|reserve|reservation|people)\b"),
        "I can help with a booking. For how many people, and at what time would you like to come?",
    ),
    (
        re.compile(r"\b(deliver|delivery|prices?|cost|ship)\b"),
        "We deliver within five kilometres. Delivery costs three euros and usually takes about forty minutes.",
    ),
    (
        re.compile(r"\b(hello|hi|hey)\b"),
        "Hello! I am the demo assistant. Ask me about our hours, bookings or delivery.",
    ),
    (re.compile(r"\b(bye|goodbye|thanks|thank you)\b"), "You are welcome. Have a lovely day!"),
)
_FALLBACK = (
    "This is the simulated assistant: no language model key is configured, so my replies are canned. "
    "I heard you say: {said}. Try asking about our opening hours, a booking, or delivery."
)


def simulated_reply(user_text: str) -> str:
    lowered = user_text.lower()
    for pattern, reply in _REPLIES:
        if pattern.search(lowered):
            return reply
    said = user_text.strip() or "nothing I could make out"
    return _FALLBACK.format(said=said[:200])


# ------------------------------------------------------------------ tools, the simulated way
_HANDOFF = re.compile(r"\b(human|person|someone|agent|manager|colleague|staff|real people)\b")
_GOODBYE = re.compile(r"\b(bye|goodbye|that's all|that is all)\b")
_HOURS = re.compile(r"\b(hours?|open|opening|close|closing|saturday|sunday|today|tomorrow)\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d ().-]{6,}\d")
_QUESTION = re.compile(r"\?\s*$|^(what|which|who|where|when|how|do|does|is|are|can|could)\b")
_STOPWORDS = frozenset({"get", "set", "the", "for", "and", "check", "find", "list", "tool", "look", "lookup"})


def simulated_tool_call(text: str, tools: Sequence[ToolSpec]) -> ToolCall | None:
    """Which offered tool the simulated model calls for the visitor's words, by plain keyword rules."""
    offered = {tool.name: tool for tool in tools}
    lowered = text.lower()

    def call(name: str, arguments: dict[str, object]) -> ToolCall | None:
        return ToolCall(id=f"call_{name}", name=name, arguments=json.dumps(arguments)) if name in offered else None

    if "forget" in lowered and (found := call("forget_visitor", {})):
        return found
    if _HANDOFF.search(lowered) and (found := call("handoff", {"reason": text.strip()[:1000]})):
        return found
    email, phone = _EMAIL.search(text), _PHONE.search(text)
    if email or phone:
        names = names_said(text)
        lead = {"name": names[-1] if names else "Visitor", "note": text.strip()[:2000]}
        lead.update({"email": email.group()} if email else {})
        lead.update({"phone": phone.group().strip()} if phone else {})
        if found := call("capture_lead", lead):
            return found
    if _GOODBYE.search(lowered) and (found := call("end_conversation", {})):
        return found
    if _HOURS.search(lowered) and (found := call("business_hours", {})):
        return found
    for tool in tools:  # a tenant's own tool whose name the visitor's words mention
        words = [w for w in tool.name.split("_") if len(w) >= 3 and w not in _STOPWORDS]
        if words and any(word in lowered for word in words):
            return ToolCall(id=f"call_{tool.name}", name=tool.name, arguments=json.dumps(_fill(tool, text)))
    if _QUESTION.search(lowered.strip()) and (found := call("search_knowledge", {"query": text.strip()[:300]})):
        return found
    return None


def _fill(tool: ToolSpec, text: str) -> dict[str, object]:
    """Arguments for a tenant's tool: numbers and ids from the words, other strings are the words."""
    properties = tool.parameters.get("properties", {})
    numbers = re.findall(r"\d+", text)
    arguments: dict[str, object] = {}
    for name, schema in properties.items() if isinstance(properties, dict) else ():
        kind = schema.get("type") if isinstance(schema, dict) else None
        if kind in ("integer", "number"):
            if numbers:
                arguments[name] = int(numbers[0])
        elif kind == "string":
            wants_id = any(part in name for part in ("id", "number", "code"))
            arguments[name] = numbers[0] if wants_id and numbers else text.strip()[:200]
    return arguments


def _trailing_tool_results(messages: Sequence[ChatMessage]) -> list[str]:
    results = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.append(message.content)
    return results[::-1]


def reply_from_tool_results(results: Sequence[str]) -> str:
    """What the simulated model says once its tools answered: their summaries, or that it does not know."""
    said = []
    for content in results:
        if content.startswith("Error:"):
            said.append(
                "I'm sorry, that did not work just now. " + content.removeprefix("Error:").strip().rstrip(".") + "."
            )
            continue
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("summary"), str):
            said.append(data["summary"])
        elif "has no information on this" in content:
            said.append("I'm sorry, I don't know that. I can only answer from what this business has told me.")
        elif passage := re.search(r"\[1\] Source: (.+)\n(.+?)(?:\n\n\[2\]|$)", content, re.DOTALL):
            said.append(f"According to {passage.group(1)}: {' '.join(passage.group(2).split())}")
        else:
            said.append("Here is what I found: " + " ".join(content.split())[:400])
    return " ".join(said)


async def _sleep_until(deadline: float) -> None:
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


class SimulatedChat(ChatModel):
    provider = SIMULATED
    model = "simulated-chat"

    def __init__(self, latency: SimulatedLatency) -> None:
        self.latency = latency

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        clock = asyncio.get_running_loop().time
        first_token_at = clock() + self.latency.llm_first_token_ms / 1000
        system = messages[0].content if messages and messages[0].role == "system" else ""
        memory_task = simulated_answer(system, last_user)
        if memory_task is None:
            memory_task = simulated_understanding(system, last_user)
        tool_results = _trailing_tool_results(messages)
        call = None if memory_task is not None or tool_results else simulated_tool_call(last_user, tools)
        if call is not None:
            await _sleep_until(first_token_at)
            yield call
            yield Usage(input_tokens=sum(estimate_tokens(m.content) for m in messages), output_tokens=10)
            return
        if memory_task is not None:
            reply = memory_task
        elif tool_results:
            reply = reply_from_tool_results(tool_results)
        else:
            reply = simulated_reply(last_user)
        # Each word is due at an absolute time, so sleep overshoot never accumulates: the latency is exact.
        gap_s = 1 / self.latency.llm_tokens_per_s
        for index, word in enumerate(reply.split(" ")):
            await _sleep_until(first_token_at + index * gap_s)
            yield TextDelta(word if index == 0 else " " + word)
        yield Usage(
            input_tokens=sum(estimate_tokens(m.content) for m in messages), output_tokens=estimate_tokens(reply)
        )


class SimulatedSpeechToText(SpeechToText):
    """Answers after a fixed latency. It does not recognise words: it reports how much speech it got."""

    provider = SIMULATED
    model = "simulated-stt"

    def __init__(self, latency: SimulatedLatency) -> None:
        self.latency = latency

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        await _sleep_until(asyncio.get_running_loop().time() + self.latency.stt_ms / 1000)
        seconds = len(pcm) / 2 / sample_rate
        yield Transcript(text=simulated_transcript(seconds), final=True)

    def open_stream(self, *, language: str, sample_rate: int = STREAM_SAMPLE_RATE) -> TranscriptionStream | None:
        return SimulatedTranscriptionStream(self.latency, sample_rate) if self.latency.stt_streams else None


def simulated_transcript(seconds: float) -> str:
    return f"(simulated transcript of {seconds:.1f} seconds of speech)"


class SimulatedTranscriptionStream(TranscriptionStream):
    """Counts the audio appended; each commit answers after ``stt_stream_ms`` with the batch provider's
    text for the seconds committed. Holds no audio and no connection."""

    def __init__(self, latency: SimulatedLatency, sample_rate: int = STREAM_SAMPLE_RATE) -> None:
        self.latency, self.sample_rate = latency, sample_rate
        self.appended_ms = 0
        self._appended_bytes = 0
        self._committed_bytes = 0
        self._closed = False
        self._closing = asyncio.Event()

    async def append(self, pcm: bytes) -> None:
        if self._closed:
            return
        self._appended_bytes += len(pcm)
        self.appended_ms = int(bytes_to_ms(self._appended_bytes, self.sample_rate))

    async def commit(self) -> Transcript:
        if self._closed:
            raise ProviderError(ErrorKind.UNAVAILABLE, "simulated: the stream is closed", provider=SIMULATED)
        pending = self._appended_bytes - self._committed_bytes
        self._committed_bytes = self._appended_bytes
        with contextlib.suppress(TimeoutError):  # the latency, cut short by close()
            async with asyncio.timeout(self.latency.stt_stream_ms / 1000):
                await self._closing.wait()
        if self._closed:
            raise ProviderError(ErrorKind.UNAVAILABLE, "simulated: the stream was closed", provider=SIMULATED)
        return Transcript(text=simulated_transcript(pending / 2 / self.sample_rate), final=True)

    async def close(self) -> None:
        self._closed = True
        self._closing.set()


class SimulatedSpeech(TextToSpeech):
    """Speaks with espeak-ng when it is installed, else a speech-like tone whose length follows the text."""

    provider = SIMULATED
    model = "simulated-tts"
    sample_rate = 24000
    CHUNK_MS = 100

    def __init__(self, latency: SimulatedLatency, *, use_espeak: bool | None = None) -> None:
        self.latency = latency
        self.espeak = shutil.which("espeak-ng") if use_espeak in (None, True) else None

    @property
    def speech_output(self) -> str:
        return ESPEAK if self.espeak else TONE

    async def synthesize(self, text: str, *, voice: str, speed: float, style: str = "") -> AsyncIterator[bytes]:
        first_byte_at = asyncio.get_running_loop().time() + self.latency.tts_first_byte_ms / 1000
        pcm, rate = await self._render(text, speed)
        chunk_bytes = rate * 2 * self.CHUNK_MS // 1000
        gap_s = self.CHUNK_MS / 1000 / self.latency.tts_realtime_factor
        for index, offset in enumerate(range(0, len(pcm), chunk_bytes)):
            await _sleep_until(first_byte_at + index * gap_s)
            yield pcm[offset : offset + chunk_bytes]

    async def _render(self, text: str, speed: float) -> tuple[bytes, int]:
        if self.espeak:
            words_per_minute = str(int(175 * speed))
            # "--": the text is the visitor's words or a tenant's greeting, never options (a sentence
            # such as "-f/etc/passwd" would otherwise make espeak read and speak that file).
            process = await asyncio.create_subprocess_exec(
                self.espeak,
                "--stdout",
                "-v",
                "en-us",
                "-s",
                words_per_minute,
                "--",
                text,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                wav_bytes, _ = await process.communicate()
            finally:
                if process.returncode is None:  # the reply was interrupted: do not leave espeak running
                    process.kill()
            if process.returncode == 0 and wav_bytes:
                return _resampled_wav(wav_bytes, self.sample_rate), self.sample_rate
        return tone_for_text(text, self.sample_rate, speed), self.sample_rate


def _resampled_wav(wav_bytes: bytes, rate: int) -> bytes:
    from voice.audio.resample import StreamResampler

    with wave.open(io.BytesIO(wav_bytes)) as reader:
        source_rate = reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    if source_rate == rate:
        return frames
    resampler = StreamResampler(source_rate, rate)
    return resampler.process(frames) + resampler.flush()


_TONE_CACHE: dict[tuple[int, int], bytes] = {}


def tone_for_text(text: str, rate: int, speed: float = 1.0) -> bytes:
    """About 65 ms of a syllable-modulated 220 Hz tone per character: long enough to be interrupted."""
    import numpy as np

    duration_ms = int(max(300, 65 * len(text) / max(speed, 0.25)))
    key = (duration_ms, rate)
    if key not in _TONE_CACHE:
        t = np.arange(int(rate * duration_ms / 1000)) / rate
        envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
        wave_ = 6000 * envelope * np.sin(2 * np.pi * 220 * t)
        _TONE_CACHE[key] = wave_.astype("<i2").tobytes()
        if len(_TONE_CACHE) > 256:
            _TONE_CACHE.pop(next(iter(_TONE_CACHE)))
    return _TONE_CACHE[key]
