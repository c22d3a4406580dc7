"""The launcher's banner says what a newcomer's assistants sound like: espeak-ng's speech or a tone."""

from __future__ import annotations

import shutil

import pytest

from aura.launcher import _banner


@pytest.mark.django_db
def test_the_banner_names_the_speech_output(settings, monkeypatch):
    settings.OPENAI_API_KEY = settings.XAI_API_KEY = ""
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    settings.AURA_SIMULATED_TTS_VOICE = "espeak"
    assert "Speech output         espeak (espeak-ng speaks" in _banner(8000)

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "Speech output         tone (espeak-ng is not installed" in _banner(8000)

    settings.AURA_SIMULATED_TTS_VOICE = "tone"
    assert "Speech output         tone (AURA_SIMULATED_TTS_VOICE=tone" in _banner(8000)
