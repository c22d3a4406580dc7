"""Which provider instances serve an assistant's session."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from voice.providers import local
from voice.providers.base import ChatModel, SpeechToText, TextToSpeech
from voice.providers.simulated import SimulatedChat, SimulatedLatency, SimulatedSpeech, SimulatedSpeechToText


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    stt_provider: str
    chat_provider: str
    tts_provider: str


@dataclass(slots=True)
class SessionProviders:
    stt: SpeechToText
    chat: ChatModel
    tts: TextToSpeech
    notes: list[str] = field(default_factory=list)

    @property
    def simulated(self) -> bool:
        return "simulated" in (self.stt.provider, self.chat.provider, self.tts.provider)


def simulated_latency() -> SimulatedLatency:
    return SimulatedLatency(
        stt_ms=settings.AURA_SIMULATED_STT_MS,
        llm_first_token_ms=settings.AURA_SIMULATED_LLM_FIRST_TOKEN_MS,
        llm_tokens_per_s=settings.AURA_SIMULATED_LLM_TOKENS_PER_S,
        tts_first_byte_ms=settings.AURA_SIMULATED_TTS_FIRST_BYTE_MS,
    )


def providers_for(choice: ProviderChoice) -> SessionProviders:
    """Real providers come with their own issue; until a provider is wired, the simulated one
    stands in, and the session tells the visitor so."""
    latency = simulated_latency()
    notes: list[str] = []
    if choice.stt_provider == "local" and local.is_available():
        stt: SpeechToText = local.LocalSpeechToText()
    else:
        if choice.stt_provider != "simulated":
            notes.append(f"speech-to-text provider {choice.stt_provider!r} is not available; using the simulated one")
        stt = SimulatedSpeechToText(latency)
    if choice.chat_provider != "simulated":
        notes.append(f"chat provider {choice.chat_provider!r} is not available; using the simulated one")
    if choice.tts_provider != "simulated":
        notes.append(f"text-to-speech provider {choice.tts_provider!r} is not available; using the simulated one")
    tts = SimulatedSpeech(latency, use_espeak=settings.AURA_SIMULATED_TTS_VOICE == "espeak")
    return SessionProviders(stt=stt, chat=SimulatedChat(latency), tts=tts, notes=notes)


def provider_mode_summary() -> str:
    if settings.OPENAI_API_KEY or settings.XAI_API_KEY:
        return "provider keys found, but this build wires only the simulated providers: replies are simulated"
    return "SIMULATED (no OPENAI_API_KEY / XAI_API_KEY): canned replies, offline speech recognition"
