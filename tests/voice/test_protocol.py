"""Parsing what clients send, and framing what the server sends."""

from __future__ import annotations

import json

import pytest

from voice.protocol import (
    ErrorCode,
    InputText,
    ProtocolError,
    ResponseCancel,
    ResponsePlayed,
    SessionEnd,
    SessionStart,
    audio_frame,
    check_audio_frame,
    parse_client_event,
    split_audio_frame,
)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "session.start", "sample_rate": 44100}, SessionStart(44100, "", False)),
        ({"type": "session.start", "text_only": True}, SessionStart(16000, "", True)),
        # null reads as "no microphone", as the protocol's "required unless text_only" implies
        ({"type": "session.start", "text_only": True, "sample_rate": None}, SessionStart(16000, "", True)),
        ({"type": "session.start", "sample_rate": 8000, "visitor_id": "v1"}, SessionStart(8000, "v1", False)),
        (
            {"type": "session.start", "sample_rate": 48000, "echo_cancellation": "none"},
            SessionStart(48000, "", False, "none"),
        ),
        ({"type": "input.text", "text": "  hi  "}, InputText("hi")),
        ({"type": "response.played", "response_id": 3, "played_ms": 1250.5}, ResponsePlayed(3, 1250.5)),
        ({"type": "response.cancel"}, ResponseCancel()),
        ({"type": "session.end"}, SessionEnd()),
    ],
)
def test_valid_events(message, expected):
    assert parse_client_event(json.dumps(message)) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", ErrorCode.INVALID_JSON),
        ("[1]", ErrorCode.INVALID_JSON),
        ('"text"', ErrorCode.INVALID_JSON),
        ("[" * 100_000, ErrorCode.INVALID_JSON),
        ("{}", ErrorCode.UNKNOWN_EVENT),
        ('{"type": 5}', ErrorCode.UNKNOWN_EVENT),
        ('{"type": "session.start"}', ErrorCode.INVALID_EVENT),
        ('{"type": "session.start", "sample_rate": true}', ErrorCode.INVALID_EVENT),
        ('{"type": "session.start", "sample_rate": null}', ErrorCode.INVALID_EVENT),
        ('{"type": "session.start", "sample_rate": 22050}', ErrorCode.UNSUPPORTED_SAMPLE_RATE),
        ('{"type": "session.start", "sample_rate": 16000, "text_only": "yes"}', ErrorCode.INVALID_EVENT),
        ('{"type": "session.start", "sample_rate": 16000, "visitor_id": 7}', ErrorCode.INVALID_EVENT),
        ('{"type": "session.start", "sample_rate": 16000, "echo_cancellation": "magic"}', ErrorCode.INVALID_EVENT),
        ('{"type": "input.text", "text": "   "}', ErrorCode.INVALID_EVENT),
        (json.dumps({"type": "input.text", "text": "x" * 2001}), ErrorCode.INVALID_EVENT),
        ('{"type": "response.played", "response_id": 0, "played_ms": 1}', ErrorCode.INVALID_EVENT),
        ('{"type": "response.played", "response_id": 1, "played_ms": -1}', ErrorCode.INVALID_EVENT),
    ],
)
def test_invalid_events_name_their_problem(raw, code):
    with pytest.raises(ProtocolError) as error:
        parse_client_event(raw)

    assert error.value.code == code
    event = error.value.as_event()
    assert event["type"] == "error" and event["code"] == str(code) and event["message"]


def test_audio_frames_must_be_whole_samples_and_small():
    check_audio_frame(b"\x00" * 640)
    with pytest.raises(ProtocolError, match="even"):
        check_audio_frame(b"\x00" * 641)
    with pytest.raises(ProtocolError, match="65536"):
        check_audio_frame(b"\x00" * 65538)


def test_outgoing_audio_names_its_response():
    frame = audio_frame(70_000, b"\x01\x02\x03\x04")

    assert split_audio_frame(frame) == (70_000, b"\x01\x02\x03\x04")


def test_the_protocol_doc_states_the_limits_the_session_applies_and_one_close_code_table():
    from pathlib import Path

    from voice.parts.admission import MAX_DROPPED_MESSAGES, MAX_PROTOCOL_ERRORS, MESSAGE_BURST, MESSAGES_PER_S
    from voice.protocol import CloseCode

    doc = (Path(__file__).resolve().parents[2] / "docs" / "websocket-protocol.md").read_text()
    assert f"a bucket of {MESSAGE_BURST:.0f} that refills at {MESSAGES_PER_S:.0f} per" in doc
    assert f"the {MAX_DROPPED_MESSAGES + 1}st dropped message" in doc
    assert f"the {MAX_PROTOCOL_ERRORS + 1}st in a session" in doc
    # every close code in one table: its rows follow each other with no other line between them
    section = doc.split("## Close codes", 1)[1].split("\n## ", 1)[0].strip().splitlines()
    rows = [index for index, line in enumerate(section) if line.startswith("|")]
    assert rows == list(range(rows[0], rows[-1] + 1)), "the close-code table is broken by other lines"
    codes = {line.split("|")[1].strip() for line in section if line.startswith("| ")}
    assert {str(int(code)) for code in CloseCode} <= codes
