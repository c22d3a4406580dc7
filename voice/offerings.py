"""What each provider offers, by capability: the providers a tenant may pick for chat, speech-to-text
and text-to-speech, their models and their voices. The assistant form offers these as choices and
refuses anything else (a voice the provider does not have is an error, not a silent fallback).

Chat models are the priced ones the router ranks (``voice.router.catalog``); an OpenAI-compatible
server (vLLM, Ollama, a self-hosted speech server) serves whatever models it was started with, so
its model names are the tenant's to write. Pure: no database, no settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice.router.catalog import CHAT_MODELS

CHAT, STT, TTS = "chat", "stt", "tts"
OPEN = "openai_compatible"  # any model name: the tenant's own server decides

PROVIDER_LABELS: dict[str, str] = {
    "simulated": "Simulated (no key needed)",
    "local": "Local, offline (PocketSphinx)",
    "openai": "OpenAI",
    "xai": "xAI Grok",
    OPEN: "OpenAI-compatible server",
}

# OpenAI's text-to-speech voices (platform.openai.com/docs/guides/text-to-speech); OpenAI-compatible speech
# servers (Kokoro-FastAPI, openedai-speech, …) answer to the same names.
OPENAI_VOICES: tuple[tuple[str, str], ...] = tuple(
    (name, name.capitalize())
    for name in ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
)
SIMULATED_VOICES: tuple[tuple[str, str], ...] = (("alloy", "Simulated voice (espeak-ng, or a tone)"),)


@dataclass(frozen=True, slots=True)
class Capability:
    name: str
    label: str
    models: dict[str, tuple[str, ...]]  # provider → its models, the first the usual choice

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self.models)

    def provider_choices(self) -> list[tuple[str, str]]:
        return [(provider, PROVIDER_LABELS[provider]) for provider in self.models]

    def offers(self, provider: str, model: str) -> bool:
        if provider not in self.models:
            return False
        return bool(model.strip()) if provider == OPEN else model in self.models[provider]

    def refusal(self, provider: str, model: str) -> str | None:
        """Why ``provider``/``model`` is not offered, in words for the form, or None."""
        if provider not in self.models:
            offered = ", ".join(PROVIDER_LABELS[p] for p in self.models)
            return f"{PROVIDER_LABELS.get(provider, provider)} has no {self.label}; choose {offered}."
        if self.offers(provider, model):
            return None
        if provider == OPEN:
            return "Enter the model name your server serves."
        return f"{PROVIDER_LABELS[provider]} has no {self.label} “{model}”; choose {', '.join(self.models[provider])}."

    def candidates(self) -> list[str]:
        """Every "provider:model" with a known name (fallback choices)."""
        return [f"{provider}:{model}" for provider, models in self.models.items() for model in models]


def _chat_models() -> dict[str, tuple[str, ...]]:
    by_provider: dict[str, list[str]] = {}
    for key in CHAT_MODELS:
        provider, _, model = key.partition(":")
        by_provider.setdefault(provider, []).append(model)
    usual = {"openai": "gpt-4o-mini", "xai": "grok-3-mini"}
    for provider, first in usual.items():  # the usual choice first
        if first in by_provider.get(provider, []):
            by_provider[provider].remove(first)
            by_provider[provider].insert(0, first)
    return {
        "simulated": tuple(by_provider["simulated"]),
        "openai": tuple(by_provider["openai"]),
        "xai": tuple(by_provider["xai"]),
        OPEN: (),
    }


CAPABILITIES: dict[str, Capability] = {
    CHAT: Capability(CHAT, "chat model", _chat_models()),
    STT: Capability(
        STT,
        "speech-to-text model",
        {
            "local": ("pocketsphinx-en-us",),
            "simulated": ("simulated-stt",),
            "openai": ("gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1"),
            OPEN: (),
        },
    ),
    TTS: Capability(
        TTS,
        "text-to-speech model",
        {"simulated": ("simulated-tts",), "openai": ("gpt-4o-mini-tts", "tts-1", "tts-1-hd"), OPEN: ()},
    ),
}

VOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "simulated": SIMULATED_VOICES,
    "openai": OPENAI_VOICES,
    OPEN: OPENAI_VOICES,
}


def voice_refusal(tts_provider: str, voice: str) -> str | None:
    voices = VOICES.get(tts_provider, ())
    if any(voice == name for name, _ in voices):
        return None
    label = PROVIDER_LABELS.get(tts_provider, tts_provider)
    if not voices:
        return f"{label} has no voices."
    return f"{label} has no voice “{voice}”; choose one of {', '.join(name for name, _ in voices)}."


def voice_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Voices grouped by provider, each option's value prefixed by nothing (a voice is a name)."""
    return [(PROVIDER_LABELS[provider], list(voices)) for provider, voices in VOICES.items()]
