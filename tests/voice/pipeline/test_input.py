"""Audio in: the rate a client's audio is heard at, and what that rate means for the turn's audio."""

from __future__ import annotations

import numpy as np
import pytest

from tests.voice.audio.test_vad import narrowband, padded
from voice.audio.frames import NARROWBAND_RATE, PIPELINE_RATE, ms_to_bytes
from voice.audio.vad import SILERO, SpeechStarted, SpeechStopped, TurnConfig
from voice.pipeline.input import AudioInput, hearing_rate


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
