"""The assistant's speech detector setting: chosen in the admin, validated, and the admin warns when
Silero VAD cannot be used on this server (the API's side: tests/api/test_resources.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils.html import escape
from django_tenants.utils import tenant_context

from tests.voice.admin_forms import assistant_form_data as _assistant_form_data
from tests.voice.audio.test_silero import silero_model
from tests.voice.test_provider_keys import _tenant_admin
from voice.models import Assistant
from voice.queries import assistant_snapshot

pytestmark = pytest.mark.django_db


def _assistant(tenant) -> Assistant:
    with tenant_context(tenant.organization):
        return Assistant.objects.get(is_default=True)


@pytest.fixture
def alpha_admin(alpha) -> Client:
    return _tenant_admin(alpha)


def _url(assistant: Assistant) -> str:
    return f"/admin/voice/assistant/{assistant.pk}/change/"


def test_an_assistant_listens_with_webrtcvad_unless_set_otherwise(alpha):
    assistant = _assistant(alpha)
    assert (assistant.speech_detector, assistant.speech_threshold) == ("webrtcvad", 0.5)
    with tenant_context(alpha.organization):
        snapshot = assistant_snapshot(assistant.pk)
    assert (snapshot.turn.detector, snapshot.turn.speech_threshold) == ("webrtcvad", 0.5)


@pytest.mark.parametrize(
    ("changes", "field", "default"),
    [
        ({"speech_threshold": 1.5}, "speech_threshold", 0.5),
        ({"speech_threshold": 0.0}, "speech_threshold", 0.5),
        ({"speech_detector": "whisper"}, "detector", "webrtcvad"),
        ({"vad_aggressiveness": 7}, "aggressiveness", 2),
        ({"speech_start_ms": 0}, "start_ms", 120),
    ],
)
def test_a_row_edited_around_validation_falls_back_to_the_default_with_a_warning(
    alpha, caplog, changes, field, default
):
    """Review 16, finding 11: a bad value in the row used to make TurnConfig raise: every session of the
    assistant failed to start. Now that setting takes its default, with a warning naming it."""
    import logging

    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get(is_default=True)
        Assistant.objects.filter(pk=assistant.pk).update(
            **{"speech_detector": "silero", "end_silence_ms": 700, **changes}
        )
        with caplog.at_level(logging.WARNING, logger="voice.queries"):
            snapshot = assistant_snapshot(assistant.pk)
    assert getattr(snapshot.turn, field) == default
    assert snapshot.turn.end_silence_ms == 700  # the other settings are kept
    if field != "detector":
        assert snapshot.turn.detector == "silero"
    assert any(field in r.getMessage() and f"assistant {assistant.pk}" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"speech_detector": "whisper"}, "speech_detector"),
        ({"speech_threshold": 0.05}, "speech_threshold"),
        ({"speech_threshold": 0.96}, "speech_threshold"),
        ({"vad_aggressiveness": 4}, "vad_aggressiveness"),
    ],
)
def test_the_model_refuses_settings_out_of_range(alpha, changes, field):
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get(is_default=True)
        for name, value in changes.items():
            setattr(assistant, name, value)
        with pytest.raises(ValidationError) as error:
            assistant.full_clean()
    assert field in error.value.message_dict


def test_the_admin_sets_silero_and_its_threshold(alpha, alpha_admin):
    silero_model()
    assistant = _assistant(alpha)
    response = alpha_admin.post(
        _url(assistant), _assistant_form_data(assistant, speech_detector="silero", speech_threshold=0.6)
    )
    assert response.status_code == 302, response.content.decode()[-4000:]
    saved = _assistant(alpha)
    assert (saved.speech_detector, saved.speech_threshold) == ("silero", 0.6)
    with tenant_context(alpha.organization):
        assert assistant_snapshot(saved.pk).turn.detector == "silero"

    page = alpha_admin.get(_url(saved)).content.decode()
    assert "Speech detector in use" in page
    assert "Silero VAD (neural" in page
    assert "cannot be used on this server" not in page


@pytest.mark.parametrize(
    ("field", "posted", "message"),
    [
        ("speech_threshold", "0.02", "Ensure this value is greater than or equal to 0.1."),
        ("speech_threshold", "1.5", "Ensure this value is less than or equal to 0.95."),
        ("speech_threshold", "loud", "Enter a number."),
        ("speech_detector", "whisper", "Select a valid choice. whisper is not one of the available choices."),
    ],
)
def test_the_admin_refuses_settings_out_of_range(alpha, alpha_admin, field, posted, message):
    assistant = _assistant(alpha)
    response = alpha_admin.post(_url(assistant), {**_assistant_form_data(assistant), field: posted})
    assert response.status_code == 200  # the form again, with the error
    assert escape(message) in response.content.decode()
    unchanged = _assistant(alpha)
    assert (unchanged.speech_detector, unchanged.speech_threshold) == (
        assistant.speech_detector,
        assistant.speech_threshold,
    )


@pytest.mark.parametrize("problem", ["missing", "corrupt"])
def test_the_admin_warns_when_silero_cannot_be_loaded(alpha, alpha_admin, settings, tmp_path, problem):
    path = tmp_path / "silero_vad.onnx"
    if problem == "corrupt":
        path.write_bytes(b"not an onnx model" * 1000)
    settings.AURA_SILERO_MODEL = str(path)
    assistant = _assistant(alpha)
    with tenant_context(alpha.organization):
        Assistant.objects.filter(pk=assistant.pk).update(speech_detector="silero")

    page = alpha_admin.get(_url(assistant)).content.decode()

    warning = "Silero VAD cannot be used on this server, so this assistant listens with webrtcvad"
    assert page.count(escape(warning)) == 2  # the message at the top and the field in Turn-taking
    assert escape(str(path)) in page
    assert ("is missing" if problem == "missing" else "cannot be loaded") in page
    # an assistant on webrtcvad is not warned about
    with tenant_context(alpha.organization):
        Assistant.objects.filter(pk=assistant.pk).update(speech_detector="webrtcvad")
    assert escape(warning) not in alpha_admin.get(_url(assistant)).content.decode()
