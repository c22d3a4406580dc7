"""The voice session's wire protocol, version 1 (docs/websocket-protocol.md): events, codes, parsing."""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass

from conversations.visitors import InvalidVisitorIdError, check_visitor_id
from core.api.parsers import BadInputError, check_text

PROTOCOL = "aura.voice.v1"
OUTPUT_SAMPLE_RATE = 24000
OUTPUT_FORMAT = "pcm_s16le"
SUPPORTED_INPUT_RATES = (8000, 16000, 24000, 44100, 48000)  # what a client may send (the server resamples)
MAX_FRAME_BYTES = 64 * 1024
MAX_TEXT_CHARS = 2000
_AUDIO_HEADER = struct.Struct("<I")


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    # daphne's WebSocket library (autobahn) sends only 1000 and 3000–4999, so the standard 1011/1012
    # are mirrored in the application range.
    INTERNAL_ERROR = 4011
    SERVICE_RESTART = 4012
    INVALID_TOKEN = 4001
    TOKEN_EXPIRED = 4002
    TOKEN_USED = 4003
    ORIGIN_NOT_ALLOWED = 4004
    UNKNOWN_KEY = 4005
    IDLE_TIMEOUT = 4008
    MAX_DURATION = 4009
    QUOTA = 4029
    PROTOCOL_ABUSE = 4400


class ErrorCode(enum.StrEnum):
    INVALID_JSON = "invalid_json"
    UNKNOWN_EVENT = "unknown_event"
    INVALID_EVENT = "invalid_event"
    ALREADY_STARTED = "already_started"
    NOT_STARTED = "not_started"
    UNSUPPORTED_SAMPLE_RATE = "unsupported_sample_rate"
    INVALID_AUDIO = "invalid_audio"
    AUDIO_TOO_LARGE = "audio_too_large"
    TEXT_ONLY_SESSION = "text_only_session"
    RATE_LIMITED = "rate_limited"
    SPEECH_TO_TEXT_FAILED = "speech_to_text_failed"
    REPLY_FAILED = "reply_failed"
    SPEECH_FAILED = "speech_failed"


class ProtocolError(Exception):
    def __init__(self, code: ErrorCode, message: str, *, event: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.event = event

    def as_event(self) -> dict[str, object]:
        body: dict[str, object] = {"type": "error", "code": str(self.code), "message": str(self)}
        if self.event:
            body["event"] = self.event
        return body


ECHO_CANCELLATION = ("browser", "loopback", "none")


@dataclass(frozen=True, slots=True)
class SessionStart:
    sample_rate: int
    visitor_id: str
    text_only: bool
    echo_cancellation: str = "browser"


@dataclass(frozen=True, slots=True)
class InputText:
    text: str


@dataclass(frozen=True, slots=True)
class ResponsePlayed:
    response_id: int
    played_ms: float


@dataclass(frozen=True, slots=True)
class ResponseCancel:
    pass


@dataclass(frozen=True, slots=True)
class SessionEnd:
    pass


ClientEvent = SessionStart | InputText | ResponsePlayed | ResponseCancel | SessionEnd


def parse_client_event(raw: str) -> ClientEvent:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.INVALID_JSON, "text frames must be JSON objects") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_JSON, "text frames must be JSON objects")
    kind = data.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise ProtocolError(ErrorCode.UNKNOWN_EVENT, f"unknown event type {str(kind)[:60]!r}")
    return parser(data)


def _parse_session_start(data: dict[str, object]) -> SessionStart:
    text_only = data.get("text_only", False)
    if not isinstance(text_only, bool):
        raise ProtocolError(ErrorCode.INVALID_EVENT, "text_only must be a boolean", event="session.start")
    rate = data.get("sample_rate")
    if rate is None and text_only:  # absent or null: a text-only session has no microphone
        rate = 16000
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise ProtocolError(ErrorCode.INVALID_EVENT, "sample_rate must be an integer", event="session.start")
    if rate not in SUPPORTED_INPUT_RATES:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_SAMPLE_RATE,
            f"sample_rate {rate} is not supported; use one of {', '.join(map(str, SUPPORTED_INPUT_RATES))}",
            event="session.start",
        )
    # Not who the visitor is (that is the session token's, docs/widget.md), but checked by the same rule as
    # every door's visitor_id, so a bad one is an error event and never reaches storage.
    visitor_id = data.get("visitor_id") or ""
    if visitor_id:
        try:
            check_visitor_id(visitor_id, chosen_by_client=False)
        except InvalidVisitorIdError as invalid:
            raise ProtocolError(ErrorCode.INVALID_EVENT, str(invalid), event="session.start") from None
    echo = data.get("echo_cancellation", "browser")
    if echo not in ECHO_CANCELLATION:
        raise ProtocolError(
            ErrorCode.INVALID_EVENT,
            f"echo_cancellation must be one of {', '.join(ECHO_CANCELLATION)}",
            event="session.start",
        )
    return SessionStart(sample_rate=rate, visitor_id=visitor_id, text_only=text_only, echo_cancellation=echo)


def _parse_input_text(data: dict[str, object]) -> InputText:
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
        raise ProtocolError(ErrorCode.INVALID_EVENT, "text must be 1–2000 characters", event="input.text")
    try:  # what PostgreSQL cannot store would be answered, then lost from the conversation
        check_text(text, "text")
    except BadInputError as bad:
        raise ProtocolError(ErrorCode.INVALID_EVENT, bad.message, event="input.text") from None
    return InputText(text=text.strip())


def _parse_response_played(data: dict[str, object]) -> ResponsePlayed:
    response_id, played_ms = data.get("response_id"), data.get("played_ms")
    if not isinstance(response_id, int) or isinstance(response_id, bool) or response_id < 1:
        raise ProtocolError(ErrorCode.INVALID_EVENT, "response_id must be a positive integer", event="response.played")
    if not isinstance(played_ms, int | float) or isinstance(played_ms, bool) or not 0 <= played_ms < 3.6e6:
        raise ProtocolError(ErrorCode.INVALID_EVENT, "played_ms must be a number ≥ 0", event="response.played")
    return ResponsePlayed(response_id=response_id, played_ms=float(played_ms))


_PARSERS = {
    "session.start": _parse_session_start,
    "input.text": _parse_input_text,
    "response.played": _parse_response_played,
    "response.cancel": lambda data: ResponseCancel(),
    "session.end": lambda data: SessionEnd(),
}


def check_audio_frame(frame: bytes) -> None:
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(ErrorCode.AUDIO_TOO_LARGE, f"audio frames must be at most {MAX_FRAME_BYTES} bytes")
    if len(frame) % 2:
        raise ProtocolError(ErrorCode.INVALID_AUDIO, "audio frames must hold whole 16-bit samples (even length)")


def audio_frame(response_id: int, pcm: bytes) -> bytes:
    """An outgoing audio frame: the response it belongs to, then its PCM."""
    return _AUDIO_HEADER.pack(response_id) + pcm


def split_audio_frame(frame: bytes) -> tuple[int, bytes]:
    return _AUDIO_HEADER.unpack_from(frame)[0], frame[_AUDIO_HEADER.size :]
