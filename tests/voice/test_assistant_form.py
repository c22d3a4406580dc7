"""The assistant form offers what the chosen provider has, and refuses anything else, whatever is posted."""

from __future__ import annotations

import io
import wave

import pytest
from django.test import Client
from django.utils.html import escape
from django_tenants.utils import tenant_context

from tests.voice.admin_forms import assistant_form_data
from tests.voice.test_provider_keys import alpha_admin  # noqa: F401 - the logged-in tenant admin
from voice.forms import AssistantForm
from voice.models import Assistant
from voice.offerings import CAPABILITIES, CHAT, TTS

pytestmark = pytest.mark.django_db


def _assistant(alpha) -> Assistant:
    with tenant_context(alpha.organization):
        return Assistant.objects.get()


def _post(alpha, client: Client, **changes: object) -> tuple[int, str, Assistant]:
    assistant = _assistant(alpha)
    response = client.post(f"/admin/voice/assistant/{assistant.pk}/change/", assistant_form_data(assistant, **changes))
    return response.status_code, response.content.decode(), _assistant(alpha)


def test_speech_to_text_providers_are_not_offered_for_chat_or_voice():
    form = AssistantForm()
    assert "local" not in dict(form.fields["tts_provider"].choices)
    assert "local" not in dict(form.fields["llm_provider"].choices)
    assert "local" in dict(form.fields["stt_provider"].choices)
    assert "xai" not in dict(form.fields["tts_provider"].choices)


def test_a_voice_the_provider_does_not_have_is_refused_with_a_clear_message(alpha, alpha_admin):  # noqa: F811
    status, page, unchanged = _post(
        alpha, alpha_admin, tts_provider="openai", tts_model="gpt-4o-mini-tts", voice="robot"
    )
    assert status == 200
    assert "Select a valid choice. robot is not one of the available choices." in page  # not offered at all
    status, page, unchanged = _post(
        alpha, alpha_admin, tts_provider="simulated", tts_model="simulated-tts", voice="nova"
    )
    assert status == 200
    assert escape("Simulated (no key needed) has no voice “nova”; choose one of alloy.") in page
    assert unchanged.voice == "alloy" and unchanged.tts_provider == "simulated"


def test_a_model_the_provider_does_not_have_is_refused(alpha, alpha_admin):  # noqa: F811
    status, page, unchanged = _post(alpha, alpha_admin, llm_provider="openai", llm_model="gpt-5-imaginary")
    assert status == 200
    assert escape("OpenAI has no chat model “gpt-5-imaginary”; choose gpt-4o-mini,") in page
    status, page, _ = _post(alpha, alpha_admin, tts_provider="local", tts_model="pocketsphinx-en-us")
    assert status == 200 and "Select a valid choice. local is not one of the available choices." in page
    assert unchanged.llm_provider == "simulated"


def test_an_offered_voice_and_model_are_saved(alpha, alpha_admin):  # noqa: F811
    status, _, saved = _post(
        alpha,
        alpha_admin,
        tts_provider="openai",
        tts_model="tts-1",
        voice="coral",
        llm_provider="xai",
        llm_model="grok-3",
    )
    assert status == 302
    assert (saved.tts_provider, saved.tts_model, saved.voice) == ("openai", "tts-1", "coral")
    assert (saved.llm_provider, saved.llm_model) == ("xai", "grok-3")


def test_an_openai_compatible_server_takes_its_own_model_names_but_needs_its_url(alpha, alpha_admin):  # noqa: F811
    status, page, _ = _post(alpha, alpha_admin, llm_provider="openai_compatible", llm_model="llama3.1:8b")
    assert status == 200 and "An OpenAI-compatible provider needs its server" in page
    status, _, saved = _post(
        alpha,
        alpha_admin,
        llm_provider="openai_compatible",
        llm_model="llama3.1:8b",
        openai_compatible_base_url="http://10.0.0.5:8000/v1",  # a literal address: no lookup
    )
    assert status == 302 and saved.llm_model == "llama3.1:8b"


def test_fallbacks_are_chosen_in_order_and_round_trip(alpha, alpha_admin):  # noqa: F811
    order = ["xai:grok-3-mini", "openai:gpt-4o-mini", "openai:gpt-4.1-nano"]
    status, _, saved = _post(alpha, alpha_admin, router_policy="fallback", llm_fallbacks=order)
    assert status == 302 and saved.llm_fallbacks == order  # the order chosen, not the list's order
    page = alpha_admin.get(f"/admin/voice/assistant/{saved.pk}/change/").content.decode()
    for slot, candidate in enumerate(order):
        select = page.split(f'name="llm_fallbacks_{slot}"', 1)[1].split("</select>", 1)[0]
        assert f'value="{candidate}" selected' in select
    # The same model twice is one fallback; empty places are skipped.
    data = {
        **assistant_form_data(saved),
        "llm_fallbacks_0": "openai:gpt-4o",
        "llm_fallbacks_1": "",
        "llm_fallbacks_2": "openai:gpt-4o",
    }
    assert alpha_admin.post(f"/admin/voice/assistant/{saved.pk}/change/", data).status_code == 302
    assert _assistant(alpha).llm_fallbacks == ["openai:gpt-4o"]


def test_the_page_leads_with_the_owner_settings_and_collapses_the_advanced_ones(alpha, alpha_admin):  # noqa: F811
    assistant = _assistant(alpha)
    page = alpha_admin.get(f"/admin/voice/assistant/{assistant.pk}/change/").content.decode()
    assert page.index('name="greeting"') < page.index('name="voice"') < page.index('name="tools"')
    assert page.index('name="tools"') < page.index("Advanced: chat model and routing")
    assert page.count('class="module aligned collapse"') == 4
    assert "Tts first byte timeout ms" not in page and "Voice: give up without audio after (ms)" in page
    assert 'id="aura-offerings"' in page and "Play a sample" in page
    assert 'id="try-it"' in page and page.index("</form>") < page.index("<aura-voice-widget")  # not nested


def test_the_voice_sample_plays_the_chosen_voice(alpha, alpha_admin):  # noqa: F811
    url = "/admin/voice/assistant/voice-sample/"
    response = alpha_admin.get(url, {"provider": "simulated", "model": "simulated-tts", "voice": "alloy"})
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as audio:
        assert audio.getnframes() / audio.getframerate() > 0.5  # a sentence, not an empty file
    refused = alpha_admin.get(url, {"provider": "openai", "model": "tts-1", "voice": "robot"})
    assert refused.status_code == 400 and "has no voice" in refused.content.decode()
    refused = alpha_admin.get(url, {"provider": "local", "model": "pocketsphinx-en-us", "voice": "alloy"})
    assert refused.status_code == 400
    metadata = {
        "provider": "openai_compatible",
        "model": "any",
        "voice": "alloy",
        "base_url": "http://169.254.169.254/v1",
    }
    refused = alpha_admin.get(url, metadata)  # no sample fetched from where a save would not be allowed
    assert refused.status_code == 400 and "The server URL is refused" in refused.content.decode()
    anonymous = Client(HTTP_HOST=alpha.host).get(url, {"provider": "simulated", "model": "simulated-tts"})
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_every_offered_chat_model_is_one_the_router_can_price():
    from voice.router.catalog import CHAT_MODELS

    assert set(CAPABILITIES[CHAT].candidates()) == set(CHAT_MODELS)
    assert CAPABILITIES[TTS].refusal("openai", "tts-1") is None


def test_the_try_it_page_lets_the_widget_reach_the_platform_under_the_csp(alpha, alpha_admin, settings):  # noqa: F811
    """The widget comes from, and talks to, the platform's host: this page's policy adds exactly that."""
    settings.AURA_PLATFORM_URL = "https://aura.example.com"
    assistant = _assistant(alpha)
    response = alpha_admin.get(f"/admin/voice/assistant/{assistant.pk}/change/")
    assert response._csp_update == {
        "script-src": ["https://aura.example.com"],
        "connect-src": ["https://aura.example.com", "wss://aura.example.com"],
        "media-src": ["blob:"],
    }
