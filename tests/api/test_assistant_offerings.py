"""The API refuses what a provider does not offer, as the admin's form does (voice/offerings.py)."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from tests.api.conftest import error_code
from voice.models import Assistant

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("patch", "field", "says"),
    [
        ({"tts_provider": "openai", "tts_model": "tts-1", "voice": "robot"}, "voice", "OpenAI has no voice “robot”"),
        ({"voice": "nova"}, "voice", "Simulated (no key needed) has no voice “nova”"),  # the stored provider
        ({"tts_provider": "local", "tts_model": "pocketsphinx-en-us"}, "tts_provider", "has no text-to-speech model"),
        ({"llm_provider": "openai", "llm_model": "gpt-5-imaginary"}, "llm_model", "OpenAI has no chat model"),
        ({"stt_fallbacks": ["openai:gpt-4o-mini"]}, "stt_fallbacks", "no speech-to-text model “gpt-4o-mini”"),
    ],
)
def test_the_api_refuses_a_voice_or_model_the_provider_does_not_have(alpha, alpha_api, patch, field, says):
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get()
    response = alpha_api.patch(f"/api/v1/assistants/{assistant.pk}/", patch, format="json")
    assert response.status_code == 400, response.json()
    assert error_code(response) == "validation_error"
    assert says in str(response.json()["error"]["details"][field])
    with tenant_context(alpha.organization):
        assert Assistant.objects.get().voice == assistant.voice


def test_the_api_takes_an_offered_voice_and_leaves_untouched_choices_alone(alpha, alpha_api):
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get()
    change = {"tts_provider": "openai", "tts_model": "gpt-4o-mini-tts", "voice": "coral"}
    assert alpha_api.patch(f"/api/v1/assistants/{assistant.pk}/", change, format="json").status_code == 200
    assert (
        alpha_api.patch(f"/api/v1/assistants/{assistant.pk}/", {"name": "Front desk"}, format="json").status_code == 200
    )
