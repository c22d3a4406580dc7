"""An assistant set to Silero VAD, end to end: a real daphne process, a real WebSocket, real speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests.voice.audio.test_silero import pink_noise, silero_model
from tests.voice.client import read_wav, silence
from tests.voice.sessions import assistant_settings, open_session
from tests.voice.test_voice_session_e2e import _turns
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NOISE_MS = 2500


async def test_a_spoken_question_after_noise_is_heard_by_silero_and_answered(daphne_server, alpha):
    silero_model()  # skips with the reason (fails under AURA_REQUIRE_ALL=1) where Silero is not installed
    async with assistant_settings(alpha, speech_detector="silero", speech_threshold=0.5):
        client, conversation_id, created = await open_session(daphne_server, alpha)
        assert created["speech_detector"] == "silero"

        # the visitor's room: 2.5 s of loud pink noise (webrtcvad calls it speech within 0.2 s), then the question
        speech, rate = read_wav("hours.wav")
        noise = pink_noise(3000.0, NOISE_MS / 1000)
        await client.stream(noise + speech + silence(300), rate)

        started = await client.wait_for("speech.started")
        stopped = await client.wait_for("speech.stopped")
        transcript = await client.wait_for("transcript.final")
        done = await client.wait_for("response.done", response_id=2)

    # the turn starts at the words (0.5 s into the fixture), not in the noise before them
    assert NOISE_MS + 300 <= started["audio_ms"] <= NOISE_MS + 500 + 400, started
    assert started["barge_in"] is False
    assert stopped["speech_ms"] > 1500
    assert "saturday" in transcript["text"], transcript  # PocketSphinx heard the question
    assert "open" in done["text"].lower()
    assert client.audio.get(2), "the reply was spoken"
    await client.close()

    turns = await eventually(lambda: len(_turns(alpha, conversation_id)) >= 3 and _turns(alpha, conversation_id))
    assert [t.role for t in turns[:3]] == ["assistant", "visitor", "assistant"]
    assert "saturday" in turns[1].text


async def test_the_same_noise_starts_a_false_turn_with_webrtcvad(daphne_server, alpha):
    """The control: with webrtcvad the same audio starts the turn in the noise, seconds before the words."""
    async with assistant_settings(alpha, speech_detector="webrtcvad"):
        client, _, created = await open_session(daphne_server, alpha)
        assert created["speech_detector"] == "webrtcvad"
        speech, rate = read_wav("hours.wav")
        await client.stream(pink_noise(3000.0, NOISE_MS / 1000) + speech[: rate * 2], rate)
        started = await client.wait_for("speech.started")
    assert started["audio_ms"] < NOISE_MS
    await client.close()


def test_the_noise_is_loud():
    """The e2e noise is ~-21 dBFS: as loud as the speech fixtures' words."""
    noise = np.frombuffer(pink_noise(3000.0, 1.0), dtype="<i2").astype(np.float64)
    speech = np.frombuffer(read_wav("hours.wav")[0], dtype="<i2").astype(np.float64)
    assert noise.std() > 0.5 * speech[np.abs(speech) > 100].std()
