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

# Speech-to-text models that transcribe while the visitor speaks (``SpeechToText.open_stream``): OpenAI's
# over a Realtime transcription session (voice.providers.openai_realtime), the simulated one by counting.
# The others transcribe each utterance once it has ended.
STREAMING_STT: dict[str, tuple[str, ...]] = {
    "simulated": ("simulated-stt",),
    "openai": ("gpt-4o-mini-transcribe", "gpt-4o-transcribe"),
}


def streams_speech(provider: str, model: str) -> bool:
    return model in STREAMING_STT.get(provider, ())


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


PROVIDER_FIELDS: dict[str, tuple[str, str]] = {
    CHAT: ("llm_provider", "llm_model"),
    STT: ("stt_provider", "stt_model"),
    TTS: ("tts_provider", "tts_model"),
}
FALLBACK_FIELDS: dict[str, str] = {CHAT: "llm_fallbacks", STT: "stt_fallbacks", TTS: "tts_fallbacks"}
OFFERING_FIELDS = (
    *(name for pair in PROVIDER_FIELDS.values() for name in pair),
    *FALLBACK_FIELDS.values(),
    "voice",
    "smart_strong_llm",
)


def offering_errors(values: dict[str, object], touched: set[str] | None = None) -> dict[str, str]:
    """Field → why an assistant's providers, models, voice or fallbacks are not offered (the admin's form
    and the API both ask). ``touched``: only the capabilities whose fields these are (a partial update
    leaves a stored choice alone); a value of None (not given, or already refused) is skipped."""

    def checks(*names: str) -> bool:
        return (touched is None or bool(touched.intersection(names))) and all(
            values.get(name) is not None for name in names
        )

    errors: dict[str, str] = {}
    for capability, (provider_field, model_field) in PROVIDER_FIELDS.items():
        if checks(provider_field, model_field):
            provider, model = str(values[provider_field]), str(values[model_field])
            if refusal := CAPABILITIES[capability].refusal(provider, model):
                errors[provider_field if provider not in CAPABILITIES[capability].models else model_field] = refusal
    voice_checked = checks("tts_provider", "voice") and "tts_provider" not in errors
    if voice_checked and (refusal := voice_refusal(str(values["tts_provider"]), str(values["voice"]))):
        errors["voice"] = refusal
    for capability, name in FALLBACK_FIELDS.items():
        if checks(name) and isinstance(values[name], list):
            for candidate in values[name]:
                provider, _, model = str(candidate).partition(":")
                if refusal := CAPABILITIES[capability].refusal(provider, model):
                    errors[name] = f"{candidate}: {refusal}"
                    break
    if checks("smart_strong_llm") and values["smart_strong_llm"]:
        provider, _, model = str(values["smart_strong_llm"]).partition(":")
        if refusal := CAPABILITIES[CHAT].refusal(provider, model):
            errors["smart_strong_llm"] = refusal
    return errors
