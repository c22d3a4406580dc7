"""A live session leaves nothing behind per audio frame: kept objects pile up young between garbage
collections (allocations and frees balance, so none runs), and the next one traverses them all on the
event loop, every session late by as long (docs/benchmarks.md, "Young tuples")."""

from __future__ import annotations

import gc
import json

import pytest

from conversations.models import EndReason
from tests.voice.test_session_timers import _session
from voice.audio.frames import ms_to_bytes
from voice.protocol import CloseCode


async def _kept_after(session, frames: int, frame: bytes) -> int:
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for _ in range(frames):
            await session.handle_audio(frame)
        return len(gc.get_objects()) - before
    finally:
        gc.enable()


@pytest.mark.parametrize("rate", [16000, 8000])
async def test_a_quiet_line_keeps_no_object_per_frame(rate: int) -> None:
    session, _, _ = _session(idle_timeout_s=600)
    await session.handle_text(json.dumps({"type": "session.start", "sample_rate": rate}))
    quiet = bytes(ms_to_bytes(40, rate))
    for _ in range(30):  # the first frames' one-off objects (the admission's bucket, the detector's rings)
        await session.handle_audio(quiet)
    try:
        assert await _kept_after(session, 600, quiet) <= 10
    finally:
        await session.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL)


async def test_a_quiet_phone_line_keeps_no_object_per_message() -> None:
    import base64

    from telephony.consumers import TwilioMediaConsumer

    session, _, _ = _session(idle_timeout_s=600)
    await session.handle_text(json.dumps({"type": "session.start", "sample_rate": 8000}))
    consumer = TwilioMediaConsumer()
    consumer.session = session
    payload = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of µ-law silence, as Twilio sends it
    message = json.dumps({"event": "media", "streamSid": "MZ1", "media": {"track": "inbound", "payload": payload}})
    for _ in range(30):
        await consumer.receive(text_data=message)
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for _ in range(600):
            await consumer.receive(text_data=message)
        kept = len(gc.get_objects()) - before
    finally:
        gc.enable()
        await session.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL)
    assert kept <= 10
