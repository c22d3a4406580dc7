"""Finding 14: the fake Twilio must be able to catch what it is there to catch."""

from __future__ import annotations

from tests.fakes.twilio import FakeTwilioCall


class _Socket:
    """Where the fake's echoes go (nothing listens in these tests)."""

    close_code = None

    async def send(self, data: str) -> None:
        pass


def fake_call() -> FakeTwilioCall:
    return FakeTwilioCall(ws=_Socket(), stream_sid="MZ1", call_sid="CA1", account_sid="AC1")  # type: ignore[arg-type]


async def test_a_late_chunk_of_a_cleared_reply_without_its_own_mark_is_counted_stale():
    call = fake_call()
    call._on_media(0.0, b"\xff" * 160)
    call._on_mark(0.0, "r2:20.0")
    await call._on_clear(0.1)  # barge-in: reply 2 is cut

    call._on_media(0.2, b"\xff" * 160)  # a leftover of reply 2, sent without a mark
    call._on_media(0.3, b"\xff" * 160)  # the next reply's first chunk, with its mark
    call._on_mark(0.3, "r3:20.0")

    assert call.stale_media == 1
    assert call.audio == {2: 160, 3: 160}


async def test_marked_chunks_of_the_next_reply_are_not_stale():
    call = fake_call()
    call._on_media(0.0, b"\xff" * 160)
    call._on_mark(0.0, "r2:20.0")
    await call._on_clear(0.1)
    for at in (0.2, 0.3):
        call._on_media(at, b"\xff" * 160)
        call._on_mark(at, f"r3:{at * 100:.1f}")

    assert call.stale_media == 0 and call.audio == {2: 160, 3: 320}


def test_the_callers_formatted_media_text_is_twilios_media_message() -> None:
    import base64
    import json

    call = FakeTwilioCall(ws=None, stream_sid="MZ0123", call_sid="CA1", account_sid="AC1")  # type: ignore[arg-type]
    call.sent_audio_ms = 40.4
    frame = bytes(range(160))

    text = json.loads(call.media_text(frame))

    assert text == {
        "event": "media",
        "sequenceNumber": "1",
        "streamSid": "MZ0123",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "40", "payload": base64.b64encode(frame).decode()},
    }
    assert json.loads(call.media_text(frame))["sequenceNumber"] == "2"
