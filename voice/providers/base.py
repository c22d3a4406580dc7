"""The three provider interfaces and the values that flow through them."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field


class ErrorKind(enum.StrEnum):
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    BAD_REQUEST = "bad_request"
    TIMEOUT = "timeout"
    CONTENT_FILTERED = "content_filtered"


class ProviderError(Exception):
    """A provider failure, mapped to one of a few kinds the router and the session understand."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str = "",
        retry_after_s: float | None = None,
        route: RouteLog | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.provider = provider
        self.retry_after_s = retry_after_s
        self.route = route  # set when every candidate of a routed call failed


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # "system", "user", "assistant" or "tool"
    content: str
    tool_call_id: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    emotion: str = ""  # a visitor's message: how they sounded (voice.understanding); never sent to a model


def estimate_tokens(text: str) -> int:
    """About how many tokens a text is (four characters a token): for calls whose usage never arrived."""
    return max(1, -(-len(text) // 4))


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, object] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(slots=True)
class Attempt:
    provider: str
    model: str
    outcome: str  # "ok", "skipped", or an ErrorKind value
    error: str = ""
    first_token_ms: float | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"provider": self.provider, "model": self.model, "outcome": self.outcome}
        if self.error:
            data["error"] = self.error
        if self.first_token_ms is not None:
            data["first_token_ms"] = round(self.first_token_ms, 1)
        return data


@dataclass(slots=True)
class RouteLog:
    """How one call was routed: the policy, why, and every attempt. Stored with the turn."""

    capability: str  # "llm", "stt" or "tts"
    policy: str
    reason: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    chosen: Attempt | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "reason": self.reason,
            "chosen": f"{self.chosen.provider}:{self.chosen.model}" if self.chosen else None,
            "attempts": [attempt.as_dict() for attempt in self.attempts],
        }


ChatEvent = TextDelta | ToolCall | Usage | RouteLog  # a routed stream yields its RouteLog before the first token


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    final: bool
    # Set by the router (voice.router.routed): how this very call was routed, so that overlapping calls on
    # one shared router each know their own route.
    route: RouteLog | None = field(default=None, compare=False, repr=False)


class ChatModel(ABC):
    provider: str
    model: str

    @abstractmethod
    def stream(self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()) -> AsyncIterator[ChatEvent]:
        """Yield text deltas and tool calls as they arrive, then one Usage."""


STREAM_SAMPLE_RATE = 16000  # what a TranscriptionStream takes unless opened at another rate (a phone's 8 kHz)


class TranscriptionStream(ABC):
    """One visitor turn's audio, sent to the provider as it is spoken.

    The session opens a stream when the visitor starts speaking (pre-roll included), appends every
    frame while the turn lasts and commits at a pause and at the end of the turn: each commit answers
    with the transcript of the audio appended since the previous one, so a turn's transcript is its
    committed pieces joined. Whatever fails (the connection, a commit), the session falls back to
    :meth:`SpeechToText.transcribe` of the whole utterance.
    """

    appended_ms: int = 0  # audio appended so far, in milliseconds (billed as speech-to-text seconds)

    @abstractmethod
    async def append(self, pcm: bytes) -> None:
        """Add 16-bit little-endian mono PCM at the stream's rate, of any length (an odd trailing byte waits for its
        pair). Buffers and returns at once: it never waits on the network for long. A stream that
        cannot keep up (its bounded buffer is full) fails, and says so at the next commit."""

    @abstractmethod
    async def commit(self) -> Transcript:
        """The final transcript (``final=True``; ``route`` set when routed) of the audio appended since the
        last commit; ``""`` when there was too little audio to transcribe. Raises ProviderError on any
        failure, a timeout included (bounded: it never waits forever)."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection. Idempotent; a commit still waiting fails with ProviderError."""


class SpeechToText(ABC):
    provider: str
    model: str

    @abstractmethod
    def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        """Yield partial transcripts where the provider streams them, then exactly one final one."""

    def open_stream(self, *, language: str, sample_rate: int = STREAM_SAMPLE_RATE) -> TranscriptionStream | None:
        """A stream that transcribes while the visitor speaks, its audio at ``sample_rate`` (the session's
        hearing rate: 16 kHz, or a phone's 8 kHz), or None when this provider does not stream (the
        default). Opening never waits: a provider that connects somewhere starts connecting in the
        background (when called inside a running event loop), and a connection that fails shows at the
        first commit. The caller closes the stream."""
        return None


class TextToSpeech(ABC):
    provider: str
    model: str
    sample_rate: int

    @property
    def speech_output(self) -> str:
        """What the listener hears, in a word (``session.created``): the provider's name; the simulated
        voice says whether it speaks with espeak-ng or plays a tone."""
        return self.provider

    @abstractmethod
    def synthesize(self, text: str, *, voice: str, speed: float, style: str = "") -> AsyncIterator[bytes]:
        """``style``: how to say it, in words ("calm and warm"), for voices that take instructions."""
        """Yield 16-bit little-endian mono PCM at ``sample_rate`` as it is produced."""
