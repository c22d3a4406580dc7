"""Audio in: the rate a client's audio is heard at, and what that rate means for the turn's audio."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from tests.voice.audio.test_vad import narrowband, padded
from voice.audio.frames import NARROWBAND_RATE, PIPELINE_RATE, ms_to_bytes
from voice.audio.vad import SILERO, SpeechStarted, SpeechStopped, TurnConfig
from voice.pipeline.input import ArrivalLog, AudioInput, hearing_rate


def hear(audio: AudioInput, pcm: bytes, chunk_ms: int = 40) -> list[object]:
    chunk = ms_to_bytes(chunk_ms, audio.resampler.in_rate)
    return [event for i in range(0, len(pcm), chunk) for event in audio.push(pcm[i : i + chunk])]


def test_a_phones_8_khz_is_heard_as_it_comes_with_no_filter_on_the_way() -> None:
    # given a caller's sentence at 8 kHz
    line = narrowband(padded("hours"))
    audio = AudioInput(NARROWBAND_RATE, TurnConfig())
    assert audio.sample_rate == NARROWBAND_RATE

    # when it is heard 40 ms at a time, as PhoneAudioIn hands it on
    started, stopped = hear(audio, line)

    # then the turn's audio is the caller's own samples, byte for byte: nothing resampled them
    assert isinstance(started, SpeechStarted) and isinstance(stopped, SpeechStopped)
    chunk = bytes(range(256)) * 2
    assert audio.resampler.process(chunk) is chunk
    offset = line.find(stopped.utterance[: ms_to_bytes(100, NARROWBAND_RATE)])
    assert offset >= 0 and line[offset : offset + len(stopped.utterance)] == stopped.utterance


@pytest.mark.parametrize("rate", [16000, 24000, 44100, 48000])
def test_wider_audio_is_heard_at_16_khz(rate: int) -> None:
    audio = AudioInput(rate, TurnConfig())
    assert (audio.sample_rate, audio.detector.sample_rate, audio.resampler.out_rate) == (PIPELINE_RATE,) * 3


def test_with_silero_a_phone_is_brought_up_to_the_models_16_khz() -> None:
    config = TurnConfig(detector=SILERO)
    assert hearing_rate(NARROWBAND_RATE, config) == PIPELINE_RATE
    audio = AudioInput(NARROWBAND_RATE, config)  # Silero, or webrtcvad where the model cannot run: 16 kHz either way
    assert (audio.sample_rate, audio.detector.sample_rate) == (PIPELINE_RATE, PIPELINE_RATE)
    second = np.zeros(NARROWBAND_RATE, dtype="<i2").tobytes()
    assert hear(audio, second) == []
    assert audio.reframer.frame_bytes == 640  # 20 ms at 16 kHz
    assert audio.frames == 49  # one second, less the filter's delay (1.8 ms) in the last frame


def tracked_objects_after(hear_for: int, audio: AudioInput, chunk: bytes) -> int:
    """How many more objects the garbage collector tracks after ``hear_for`` chunks (collections off)."""
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for _ in range(hear_for):
            audio.push(chunk)
        return len(gc.get_objects()) - before
    finally:
        gc.enable()


@pytest.mark.parametrize(("rate", "chunk_ms"), [(16000, 40), (NARROWBAND_RATE, 40), (48000, 20)])
def test_listening_leaves_no_object_behind_per_chunk(rate: int, chunk_ms: int) -> None:
    """Objects kept per chunk pile up young between collections (allocations and frees balance, so
    none runs); the next one then traverses them all on the event loop. 600 chunks must leave none."""
    audio = AudioInput(rate, TurnConfig())
    quiet = bytes(ms_to_bytes(chunk_ms, rate))
    audio.push(quiet)  # the first chunk's one-off objects
    assert tracked_objects_after(600, audio, quiet) <= 5


def test_the_end_of_speech_is_dated_by_the_arrival_of_its_chunk() -> None:
    log = ArrivalLog(size=4)
    assert log.arrival_of(1) is None
    for frames in (2, 4, 6, 8, 10, 12):  # two frames a chunk; the first two chunks are forgotten
        log.add(frames)
    arrivals = [log.arrival_of(frame) for frame in (1, 5, 6, 7, 12, 13)]
    assert arrivals[0] == arrivals[1] == arrivals[2]  # frame 1 is older than the log: its oldest arrival
    assert arrivals[2] is not None and arrivals[3] is not None and arrivals[2] < arrivals[3] < arrivals[4]
    assert arrivals[5] is None  # not arrived yet
