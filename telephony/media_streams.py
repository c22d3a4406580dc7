"""Twilio Media Streams' WebSocket messages (bidirectional streams, ``<Connect><Stream>``), as Twilio
documents them: ``connected``, ``start``, ``media``, ``mark``, ``dtmf`` and ``stop`` in; ``media``,
``mark`` and ``clear`` out. Audio is 8 kHz µ-law, base64 in ``media.payload``.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field
from functools import lru_cache

from voice.protocol import ErrorCode, ProtocolError

MAX_MESSAGE_CHARS = 16 * 1024  # Twilio's media messages are about 300 characters (20 ms of audio)
MAX_PAYLOAD_BYTES = 8000  # one second of 8 kHz µ-law in one message: far more than Twilio ever sends
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
KEYS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True)
class Connected:
    pass


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Media:
    payload: bytes  # µ-law
    track: str


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Stop:
    pass


TwilioMessage = Connected | Start | Media | Mark | Dtmf | Stop


def _invalid(message: str, event: str | None = None) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_EVENT, message, event=event)


def _object(data: dict[str, object], key: str, event: str) -> dict[str, object]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise _invalid(f"{event} needs a {key!r} object", event)
    return value


def _text(data: dict[str, object], key: str, event: str, *, limit: int = 64) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _invalid(f"{event}.{key} must be a string of at most {limit} characters", event)
    return value


def parse_message(raw: str) -> TwilioMessage:
    """One text message from Twilio; ProtocolError for anything else."""
    if len(raw) > MAX_MESSAGE_CHARS:
        raise ProtocolError(ErrorCode.AUDIO_TOO_LARGE, f"messages must be at most {MAX_MESSAGE_CHARS} characters")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.INVALID_JSON, "messages must be JSON objects") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_JSON, "messages must be JSON objects")
    kind = data.get("event")
    if kind == "media":
        media = _object(data, "media", "media")
        track = media.get("track", "inbound")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise _invalid("media.payload must be base64 text", "media")
        if len(payload) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
            raise ProtocolError(ErrorCode.AUDIO_TOO_LARGE, f"media payloads must be at most {MAX_PAYLOAD_BYTES} bytes")
        try:  # strict: only the base64 alphabet with correct padding (a non-ASCII str is a ValueError)
            audio = binascii.a2b_base64(payload, strict_mode=True)
        except (binascii.Error, ValueError):
            raise ProtocolError(ErrorCode.INVALID_AUDIO, "media.payload is not base64") from None
        return Media(payload=audio, track=track if isinstance(track, str) else "")
    if kind == "mark":
        return Mark(name=_text(_object(data, "mark", "mark"), "name", "mark"))
    if kind == "dtmf":
        digit = _object(data, "dtmf", "dtmf").get("digit")
        if not isinstance(digit, str) or digit not in KEYS:
            raise _invalid("dtmf.digit must be one of 0-9, *, #, A-D", "dtmf")
        return Dtmf(digit=digit)
    if kind == "start":
        start = _object(data, "start", "start")
        parameters = start.get("customParameters") or {}
        if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
            raise _invalid("start.customParameters must map names to strings", "start")
        media_format = start.get("mediaFormat")
        if isinstance(media_format, dict) and (
            media_format.get("encoding") != MEDIA_FORMAT["encoding"] or media_format.get("sampleRate") != 8000
        ):
            raise _invalid("only 8 kHz audio/x-mulaw streams are supported", "start")
        return Start(
            stream_sid=_text(start, "streamSid", "start"),
            call_sid=_text(start, "callSid", "start"),
            account_sid=str(start.get("accountSid", ""))[:64],
            parameters={str(k)[:64]: v[:4096] for k, v in list(parameters.items())[:16]},
        )
    if kind == "connected":
        return Connected()
    if kind == "stop":
        return Stop()
    raise ProtocolError(ErrorCode.UNKNOWN_EVENT, f"unknown event {str(kind)[:60]!r}")


# What the session sends, 5-10 times a second per call while it speaks: built by formatting, not by
# json.dumps, which scans the 2 KB of base64 for characters to escape (15 µs for 200 ms of audio,
# against 2 µs). Only the stream's id and a mark's name can hold characters JSON must escape, and they
# are encoded by json.dumps (the id once per call).


@lru_cache(maxsize=4096)
def _json_string(value: str) -> str:
    return json.dumps(value)


def media_message(stream_sid: str, ulaw: bytes) -> str:
    payload = binascii.b2a_base64(ulaw, newline=False).decode("ascii")
    return f'{{"event":"media","streamSid":{_json_string(stream_sid)},"media":{{"payload":"{payload}"}}}}'


def mark_message(stream_sid: str, name: str) -> str:
    return f'{{"event":"mark","streamSid":{_json_string(stream_sid)},"mark":{{"name":{json.dumps(name)}}}}}'


def clear_message(stream_sid: str) -> str:
    return f'{{"event":"clear","streamSid":{_json_string(stream_sid)}}}'
