"""The listening evaluation set (bench/listening_set.py): its playback clips hold the assistant's own voice."""

from __future__ import annotations

import numpy as np

from bench.listening_set import ECHO_DB, SENTENCES, active_level, playback_clip, read_sentence


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768


def test_playback_clips_carry_an_echo_of_the_assistants_voice_at_its_level():
    """Review 16, finding 6: false barge-ins were measured on background alone, while a real microphone also
    picks up the assistant's own voice from the speaker (what echo cancellation leaves of it)."""
    sentences = {name: read_sentence(name) for name in SENTENCES}
    level = active_level(np.concatenate(list(sentences.values())))
    without = playback_clip("pink", "pink", 20, 20.0, np.random.default_rng(3), sentences, echo_db=None)
    with_echo = playback_clip("pink", "pink", 20, 20.0, np.random.default_rng(3), sentences)
    echo = _samples(with_echo.pcm) - _samples(without.pcm)  # the same background, drawn first
    assert ECHO_DB is not None
    measured_db = 20 * np.log10(active_level(echo) / level)
    assert abs(measured_db - ECHO_DB) < 1.0, measured_db
    # speech-like: loud and quiet stretches (words and gaps), not a steady noise
    rms = np.sqrt(np.mean(echo[: len(echo) // 320 * 320].reshape(-1, 320) ** 2, axis=1))
    assert rms.max() > 10 * np.percentile(rms, 10)
