"""A live session leaves nothing behind per audio frame: kept objects pile up young between garbage
collections (allocations and frees balance, so none runs), and the next one traverses them all on the
event loop, every session late by as long (docs/benchmarks.md, "Young tuples")."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
from collections.abc import Awaitable, Callable

import pytest

from conversations.models import EndReason
from telephony.consumers import TwilioMediaConsumer
from tests.voice.audio.test_vad import narrowband, padded
from tests.voice.test_session_timers import FakeRecorder, _session
from voice.audio.frames import ms_to_bytes
from voice.parts.admission import MESSAGE_BURST
from voice.protocol import CloseCode
from voice.session import VoiceSession


async def _as_paced(session: VoiceSession, send: Callable[[], Awaitable[None]], times: int) -> None:
    """``times`` messages, each within the flood limit, as a real client's arrive over time."""
    for _ in range(times):
        session.admission.bucket.tokens = MESSAGE_BURST
        await send()


async def _kept_after(session: VoiceSession, send: Callable[[], Awaitable[None]], times: int) -> int:
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        await _as_paced(session, send, times)
        return len(gc.get_objects()) - before
    finally:
        gc.enable()


async def _started(rate: int) -> VoiceSession:
    session, _, _ = _session(idle_timeout_s=600)
    await session.handle_text(json.dumps({"type": "session.start", "sample_rate": rate}))
    return session


@pytest.mark.parametrize("rate", [16000, 8000])
async def test_a_quiet_line_keeps_no_object_per_frame(rate: int) -> None:
    session = await _started(rate)
    quiet = bytes(ms_to_bytes(40, rate))
    assert session.turns.input is not None
    try:
        await _as_paced(session, lambda: session.handle_audio(quiet), 30)  # the first frames' one-off objects
        heard_before = session.turns.input.frames
        assert await _kept_after(session, lambda: session.handle_audio(quiet), 600) <= 10
        assert not session.ended
        assert session.turns.input.frames - heard_before == 1200  # every 40 ms was heard: two 20 ms frames
    finally:
        await session.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL)


async def test_a_quiet_phone_line_keeps_no_object_per_message() -> None:
    session = await _started(8000)
    consumer = TwilioMediaConsumer()
    consumer.session = session
    payload = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of µ-law silence, as Twilio sends it
    message = json.dumps({"event": "media", "streamSid": "MZ1", "media": {"track": "inbound", "payload": payload}})
    assert session.turns.input is not None
    try:
        await _as_paced(session, lambda: consumer.receive(text_data=message), 30)
        heard_before = session.turns.input.frames
        assert await _kept_after(session, lambda: consumer.receive(text_data=message), 600) <= 10
        assert not session.ended
        assert session.turns.input.frames - heard_before == 600  # one 20 ms frame a message, heard in pairs
    finally:
        await session.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL)


async def test_a_phone_callers_recorded_words_are_stored_at_the_lines_8_khz() -> None:
    recorder = FakeRecorder()
    recorder.tenant.record_audio = True
    session, _, _ = _session(idle_timeout_s=600, recorder=recorder)
    await session.handle_text(json.dumps({"type": "session.start", "sample_rate": 8000}))
    line = narrowband(padded("hours"))
    chunk = ms_to_bytes(40, 8000)
    try:
        for offset in range(0, len(line), chunk):
            session.admission.bucket.tokens = MESSAGE_BURST
            await session.handle_audio(line[offset : offset + chunk])
        async with asyncio.timeout(10):
            while not any(turn.audio_pcm for turn in recorder.turns):
                await asyncio.sleep(0.02)
    finally:
        await session.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL)
    [spoken] = [turn for turn in recorder.turns if turn.audio_pcm]
    assert spoken.audio_rate == 8000
    assert spoken.audio_pcm in line  # the caller's own samples, as the line carried them
