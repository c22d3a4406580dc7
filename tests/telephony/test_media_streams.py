"""Twilio's Media Streams messages, and the Transport that maps the voice session onto them."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

from telephony.keypad import Keypad, keys_in_words
from telephony.media_streams import (
    MAX_MESSAGE_CHARS,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    clear_message,
    mark_message,
    media_message,
    parse_message,
)
from telephony.transport import TwilioTransport
from voice.audio.mulaw import ulaw_to_pcm
from voice.protocol import ProtocolError, audio_frame

PCM_200_MS = b"\x10\x00" * 4800  # 200 ms at 24 kHz


def media(payload: bytes, **extra: object) -> str:
    body = {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": base64.b64encode(payload).decode()}
    return json.dumps({"event": "media", "streamSid": "MZ1", "media": {**body, **extra}})


def test_twilios_documented_messages_are_read() -> None:
    start = parse_message(
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": "MZ1",
                "start": {
                    "accountSid": "AC1",
                    "streamSid": "MZ1",
                    "callSid": "CA1",
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": {"token": "abc"},
                },
            }
        )
    )
    assert start == Start(stream_sid="MZ1", call_sid="CA1", account_sid="AC1", parameters={"token": "abc"})
    assert parse_message(media(b"\xff" * 160)) == Media(payload=b"\xff" * 160, track="inbound")
    assert parse_message('{"event": "mark", "streamSid": "MZ1", "mark": {"name": "r1:200.0"}}') == Mark("r1:200.0")
    dtmf = '{"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "#"}}'
    assert parse_message(dtmf) == Dtmf("#")
    assert parse_message('{"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA1"}}') == Stop()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('{"event": "teleport"}', "unknown_event"),
        ('{"event": "media", "media": {"payload": "***"}}', "invalid_audio"),
        ('{"event": "media", "media": {"payload": 5}}', "invalid_event"),
        ('{"event": "media"}', "invalid_event"),
        ('{"event": "dtmf", "dtmf": {"digit": "x"}}', "invalid_event"),
        ('{"event": "mark", "mark": {}}', "invalid_event"),
        ('{"event": "start", "start": {"streamSid": "MZ1"}}', "invalid_event"),
        (
            '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", '
            '"mediaFormat": {"encoding": "audio/l16", "sampleRate": 16000}}}',
            "invalid_event",
        ),
        ('{"event": "media", "media": {"payload": "/w="}}', "invalid_audio"),  # wrong padding
        ('{"event": "media", "media": {"payload": "/w==/w=="}}', "invalid_audio"),  # data after padding
        ('{"event": "media", "media": {"payload": "/\\u00ff=="}}', "invalid_audio"),  # not ASCII
        ('{"event": "media", "media": {"payload": "/w\\n=="}}', "invalid_audio"),  # a line break
        (media(b"\xff" * 9000), "audio_too_large"),
        ("x" * (MAX_MESSAGE_CHARS + 1), "audio_too_large"),
    ],
)
def test_anything_else_is_a_protocol_error_with_a_code(raw: str, code: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_message(raw)
    assert str(refused.value.code) == code


@pytest.mark.parametrize("stream_sid", ["MZ1", 'MZ"quoted\\', "MZ\u00e9\n\u2028"])
def test_outgoing_messages_are_the_json_twilio_documents(stream_sid: str) -> None:
    """Built by formatting for speed: each must read back as exactly what json.dumps would have said."""
    ulaw = bytes(range(256)) * 7
    assert json.loads(media_message(stream_sid, ulaw)) == {
        "event": "media",
        "streamSid": stream_sid,
        "media": {"payload": base64.b64encode(ulaw).decode()},
    }
    assert json.loads(mark_message(stream_sid, 'r1:"2"\\')) == {
        "event": "mark",
        "streamSid": stream_sid,
        "mark": {"name": 'r1:"2"\\'},
    }
    assert json.loads(clear_message(stream_sid)) == {"event": "clear", "streamSid": stream_sid}
    assert parse_message(media_message(stream_sid, ulaw)) == Media(payload=ulaw, track="inbound")


class Wire:
    """What the transport sends to Twilio, and the session's played reports."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed: int | None = None
        self.played: list[tuple[int, float]] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int) -> None:
        self.closed = code

    def of(self, event: str) -> list[dict]:
        return [m for m in self.sent if m["event"] == event]


def transport_on(wire: Wire) -> TwilioTransport:
    transport = TwilioTransport("MZ1", send_text=wire.send_text, close=wire.close)
    transport.on_played = lambda reply, ms: wire.played.append((reply, ms))
    return transport


async def test_reply_audio_goes_out_as_mulaw_media_each_followed_by_a_mark() -> None:
    wire = Wire()
    transport = transport_on(wire)

    for _ in range(3):
        await transport.send_audio(audio_frame(4, PCM_200_MS))
    await transport.send_event({"type": "response.audio.done", "response_id": 4, "audio_ms": 600})
    await transport.send_event({"type": "transcript.final", "text": "hi"})  # no place on a phone line

    kinds = [m["event"] for m in wire.sent]
    assert kinds == ["media", "mark"] * 4  # three chunks and the resampler's tail
    wire_audio = b"".join(base64.b64decode(m["media"]["payload"]) for m in wire.of("media"))
    assert len(wire_audio) == pytest.approx(0.6 * 8000, abs=2)
    assert all(m["streamSid"] == "MZ1" for m in wire.sent)
    names = [m["mark"]["name"] for m in wire.of("mark")]
    assert names[-1] == f"r4:{len(wire_audio) / 8:.1f}" and all(n.startswith("r4:") for n in names)
    middle = np.frombuffer(ulaw_to_pcm(wire_audio[800:1600]), dtype="<i2")
    assert np.all(np.abs(middle - 16) <= 2), "the level of the reply's audio survives (16 ± a µ-law step)"


async def test_marks_tell_what_was_heard_and_a_cut_reply_is_cleared_and_reported_once() -> None:
    wire = Wire()
    transport = transport_on(wire)
    for _ in range(3):
        await transport.send_audio(audio_frame(2, PCM_200_MS))
    first, second, third = (m["mark"]["name"] for m in wire.of("mark"))

    transport.mark_heard(first)  # Twilio played the first chunk
    assert transport.heard_ms(2) >= float(first.split(":")[1])
    assert transport.heard_ms(2) <= float(second.split(":")[1])

    await transport.send_event({"type": "response.interrupted", "response_id": 2, "reason": "barge_in"})
    assert wire.of("clear") == [{"event": "clear", "streamSid": "MZ1"}]
    transport.mark_heard(second)  # returned by the clear: says nothing about playing
    transport.mark_heard(third)
    await transport.send_audio(audio_frame(2, PCM_200_MS))  # a late chunk of the cut reply
    assert len(wire.of("media")) == 3, "no audio of a cleared reply goes out"

    await transport.send_event({"type": "response.heard", "response_id": 2, "text": "…", "played_ms": 150})
    await transport.send_event({"type": "response.heard", "response_id": 2, "text": "…", "played_ms": 150})
    assert len(wire.played) == 1
    reply, heard = wire.played[0]
    assert reply == 2 and float(first.split(":")[1]) <= heard <= float(second.split(":")[1])


async def test_closing_waits_until_the_caller_heard_the_goodbye() -> None:
    wire = Wire()
    transport = transport_on(wire)
    await transport.send_audio(audio_frame(3, PCM_200_MS))
    name = wire.of("mark")[-1]["mark"]["name"]

    closing = asyncio.create_task(transport.close(1000))
    await asyncio.sleep(0.05)
    assert wire.closed is None and not closing.done()
    transport.mark_heard(name)
    await asyncio.wait_for(closing, 1)
    assert wire.closed == 1000


async def test_an_abusive_or_failed_stream_closes_without_waiting_for_marks() -> None:
    """Finding 10: these closes come from inside the receive loop, which cannot read marks meanwhile."""
    for code in (4400, 4011):
        wire = Wire()
        transport = transport_on(wire)
        await transport.send_audio(audio_frame(3, PCM_200_MS))  # its mark never comes back

        closing = asyncio.create_task(transport.close(code))
        for _ in range(5):
            await asyncio.sleep(0)

        assert closing.done() and wire.closed == code


async def test_unknown_marks_are_ignored() -> None:
    transport = transport_on(Wire())
    for name in ("hello", "r:1", "rx:2", "r9:1.0"):
        transport.mark_heard(name)
    assert transport.marks_heard == 0


async def test_keys_pressed_together_become_one_input() -> None:
    delivered: list[str] = []

    async def deliver(text: str) -> None:
        delivered.append(text)

    keypad = Keypad(deliver, gap_s=0.05)
    await keypad.press("1")
    await keypad.press("2")
    await keypad.press("#")
    await keypad.press("7")
    await asyncio.sleep(0.2)

    assert delivered == [keys_in_words("12#"), keys_in_words("7")]
    assert delivered[0] == "The caller pressed 1, 2 and # on the phone's keypad."
    assert delivered[1] == "The caller pressed 7 on the phone's keypad."
