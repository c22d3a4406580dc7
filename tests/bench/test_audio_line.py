"""The benches' callers and visitors send audio as their clients do: a phone line and an open microphone
send a frame every frame period for the whole session, silence between the words (bench.common.AudioLine)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.common import AudioLine

FRAME_S = 0.01
SILENCE = b"\xff"


def _line(sent: list[tuple[float, bytes]], *, continuous: bool) -> AudioLine:
    async def send(frame: bytes) -> None:
        sent.append((time.monotonic(), frame))

    return AudioLine(send, frame_bytes=4, frame_s=FRAME_S, silence=SILENCE, continuous=continuous)


async def test_a_continuous_line_sends_silence_between_the_words_one_frame_a_period():
    sent: list[tuple[float, bytes]] = []
    line = _line(sent, continuous=True)
    line.start()
    await asyncio.sleep(5 * FRAME_S)
    begun, said = line.say(b"abcdefgh")  # two frames of words
    started, finished = await begun, await said
    await asyncio.sleep(3 * FRAME_S)
    await line.stop()

    frames = [frame for _, frame in sent]
    assert frames.count(b"abcd") == frames.count(b"efgh") == 1
    words_at = frames.index(b"abcd")
    assert words_at >= 3 and frames[words_at + 1] == b"efgh"  # the words in order, after silence
    assert set(frames[:words_at] + frames[words_at + 2 :]) == {SILENCE * 4}  # silence before and after
    assert len(frames) - words_at - 2 >= 2
    # the first sample was spoken one frame before its frame left; the last frame left at `said`
    assert started == pytest.approx(sent[words_at][0] - FRAME_S, abs=0.005)
    assert finished == pytest.approx(sent[words_at + 1][0], abs=0.005)
    assert abs(line.lateness_ms(b"abcdefgh", started, finished)) < 5
    period = (sent[-1][0] - sent[0][0]) / (len(sent) - 1)
    assert period == pytest.approx(FRAME_S, rel=0.3)  # a frame a period, not a burst


async def test_a_speech_only_line_sends_the_words_and_nothing_between_them():
    sent: list[tuple[float, bytes]] = []
    line = _line(sent, continuous=False)
    line.start()
    await asyncio.sleep(5 * FRAME_S)
    assert sent == []
    await line.say(b"abcdefgh")[1]
    await asyncio.sleep(3 * FRAME_S)
    await line.stop()

    assert [frame for _, frame in sent] == [b"abcd", b"efgh"]


async def test_whoever_waits_on_a_dead_line_learns_it():
    async def send(frame: bytes) -> None:
        raise ConnectionResetError("closed")

    line = AudioLine(send, frame_bytes=4, frame_s=FRAME_S, silence=SILENCE, continuous=False)
    line.start()
    begun, said = line.say(b"abcd")
    with pytest.raises(ConnectionError, match="the line went dead"):
        await asyncio.wait_for(said, 5)
    assert isinstance(begun.exception(), ConnectionError)
    # words said after the line died fail at once, they do not wait for ever
    later_begun, later_said = line.say(b"efgh")
    with pytest.raises(ConnectionError, match="the line went dead"):
        await asyncio.wait_for(later_said, 1)
    assert isinstance(later_begun.exception(), ConnectionError)
    await line.stop()
