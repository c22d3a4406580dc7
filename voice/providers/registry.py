"""Which providers serve an assistant's session: its candidates, each built with the right key and
wrapped by the router (design notes §4)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings

from core.crypto import Secret
from voice.offerings import streams_speech
from voice.providers import local
from voice.providers.base import ChatModel, SpeechToText, TextToSpeech
from voice.providers.simulated import SimulatedChat, SimulatedLatency, SimulatedSpeech, SimulatedSpeechToText
from voice.router.candidates import Candidate
from voice.router.health import provider_health
from voice.router.policies import SmartRules
from voice.router.routed import RoutedChat, RoutedSpeech, RoutedSpeechToText

SIMULATED_CHAT = Candidate("simulated", "simulated-chat")
SIMULATED_STT = Candidate("simulated", "simulated-stt")
SIMULATED_TTS = Candidate("simulated", "simulated-tts")
T = TypeVar("T")
NO_KEY_NEEDED = "not-needed"  # self-hosted OpenAI-compatible servers usually take any key


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Everything the router needs of an assistant, read once when a session opens."""

    llm: tuple[Candidate, ...]  # the primary first, then the fallbacks
    stt: tuple[Candidate, ...]
    tts: tuple[Candidate, ...]
    policy: str = "fixed"
    smart: SmartRules = field(default_factory=lambda: SmartRules(strong=None))
    llm_bound_s: float = 2.5
    stt_bound_s: float = 4.0
    tts_bound_s: float = 2.0
    openai_compatible_base_url: str = ""
    tenant_keys: Mapping[str, Secret] = field(default_factory=dict)  # provider → the tenant's own key


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
        stt_stream_ms=settings.AURA_SIMULATED_STT_STREAM_MS,
        stt_streams=settings.AURA_SIMULATED_STT_STREAMING,
        llm_first_token_ms=settings.AURA_SIMULATED_LLM_FIRST_TOKEN_MS,
        llm_tokens_per_s=settings.AURA_SIMULATED_LLM_TOKENS_PER_S,
        tts_first_byte_ms=settings.AURA_SIMULATED_TTS_FIRST_BYTE_MS,
    )


def providers_for(config: RoutingConfig) -> SessionProviders:
    """Build every candidate that can run here; one without a key is left out, and the session says so.
    If none of a capability's candidates can run, the simulated provider stands in."""
    notes: list[str] = []
    health = provider_health()
    chat = _build("chat model", config.llm, config, _chat, SIMULATED_CHAT, notes)
    stt = _build("speech-to-text", config.stt, config, _speech_to_text, SIMULATED_STT, notes)
    tts = _build("text-to-speech", config.tts, config, _speech, SIMULATED_TTS, notes)
    return SessionProviders(
        chat=RoutedChat(chat, policy=config.policy, bound_s=config.llm_bound_s, health=health, smart=config.smart),
        stt=RoutedSpeechToText(stt, bound_s=config.stt_bound_s, health=health),
        tts=RoutedSpeech(tts, bound_s=config.tts_bound_s, health=health),
        notes=notes,
    )


def _build(
    what: str,
    candidates: tuple[Candidate, ...],
    config: RoutingConfig,
    make: Callable[[Candidate, RoutingConfig], T | str],
    stand_in: Candidate,
    notes: list[str],
) -> list[tuple[Candidate, T]]:
    built: list[tuple[Candidate, T]] = []
    for candidate in candidates:
        made = make(candidate, config)
        if isinstance(made, str):
            notes.append(f"{what} {candidate.key} is not available: {made}")
        else:
            built.append((candidate, made))
    if not built:
        notes.append(f"using the simulated {what}")
        fallback = make(stand_in, config)
        assert not isinstance(fallback, str)
        built.append((stand_in, fallback))
    return built


def _api_key(provider: str, config: RoutingConfig) -> str:
    if tenant_key := config.tenant_keys.get(provider):
        return tenant_key
    if provider == "openai":
        return settings.OPENAI_API_KEY
    if provider == "xai":
        return settings.XAI_API_KEY
    return NO_KEY_NEEDED if provider == "openai_compatible" else ""


def _openai_client_for(candidate: Candidate, config: RoutingConfig) -> object | str:
    from core.netguard import provider_policy
    from voice.providers.openai_api import openai_client  # the SDK loads only where it is used

    key = _api_key(candidate.provider, config)
    if candidate.provider == "openai":
        if not key:
            return "no OpenAI key (set OPENAI_API_KEY or add the organization's own key)"
        return openai_client(api_key=key, base_url=settings.OPENAI_BASE_URL or None)
    if not config.openai_compatible_base_url:
        return "the assistant has no OpenAI-compatible base URL"
    # The tenant's URL: checked again, under the settings of now, at every connection (core.netguard).
    return openai_client(api_key=key, base_url=config.openai_compatible_base_url, policy=provider_policy)


def _chat(candidate: Candidate, config: RoutingConfig) -> ChatModel | str:
    if candidate.provider == "simulated":
        return SimulatedChat(simulated_latency())
    if candidate.provider in ("openai", "openai_compatible"):
        from voice.providers.openai_api import OpenAIChat

        client = _openai_client_for(candidate, config)
        if isinstance(client, str):
            return client
        return OpenAIChat(client, model=candidate.model, provider=candidate.provider)  # type: ignore[arg-type]
    if candidate.provider == "xai":
        from voice.providers.xai_api import XAIChat, xai_client

        key = _api_key("xai", config)
        if not key:
            return "no xAI key (set XAI_API_KEY or add the organization's own key)"
        client = xai_client(api_key=key, api_host=settings.XAI_API_HOST, insecure=settings.XAI_INSECURE)
        return XAIChat(client, model=candidate.model)
    return f"{candidate.provider} has no chat models"


def _speech_to_text(candidate: Candidate, config: RoutingConfig) -> SpeechToText | str:
    if candidate.provider == "simulated":
        return SimulatedSpeechToText(simulated_latency())
    if candidate.provider == "local":
        return local.LocalSpeechToText() if local.is_available() else "PocketSphinx is not installed"
    if candidate.provider in ("openai", "openai_compatible"):
        from voice.providers.openai_api import OpenAISpeechToText

        client = _openai_client_for(candidate, config)
        if isinstance(client, str):
            return client
        batch = OpenAISpeechToText(client, model=candidate.model, provider=candidate.provider)  # type: ignore[arg-type]
        if candidate.provider == "openai" and streams_speech("openai", candidate.model):
            from voice.providers.openai_realtime import OpenAIRealtimeSpeechToText

            # The operator's own URL, trusted like the SDK's (a tenant's OpenAI-compatible server is not
            # assumed to speak the Realtime API: its failures would open the breaker of its batch path).
            key = _api_key("openai", config)
            try:
                return OpenAIRealtimeSpeechToText(batch, api_key=key, base_url=settings.OPENAI_BASE_URL or None)
            except ValueError:  # a base URL without a WebSocket form: transcribe in batch only
                return batch
        return batch
    return f"{candidate.provider} speech-to-text is reached as an OpenAI-compatible server (set its base URL)"


def speech_for(candidate: Candidate, config: RoutingConfig) -> TextToSpeech | str:
    """One text-to-speech provider, outside the router (a voice sample), or why it cannot run here."""
    return _speech(candidate, config)


def _speech(candidate: Candidate, config: RoutingConfig) -> TextToSpeech | str:
    if candidate.provider == "simulated":
        return SimulatedSpeech(simulated_latency(), use_espeak=settings.AURA_SIMULATED_TTS_VOICE == "espeak")
    if candidate.provider in ("openai", "openai_compatible"):
        from voice.providers.openai_api import OpenAISpeech

        client = _openai_client_for(candidate, config)
        if isinstance(client, str):
            return client
        return OpenAISpeech(client, model=candidate.model, provider=candidate.provider)  # type: ignore[arg-type]
    return f"{candidate.provider} text-to-speech is reached as an OpenAI-compatible server (set its base URL)"


def simulated_speech_output() -> str:
    """What the simulated voice sounds like on this machine: espeak-ng's speech, or a tone."""
    return SimulatedSpeech(simulated_latency(), use_espeak=settings.AURA_SIMULATED_TTS_VOICE == "espeak").speech_output


def speech_output_summary() -> str:
    """For the launcher's banner: what the visitor hears from assistants on the simulated voice."""
    if simulated_speech_output() == "espeak":
        summary = "espeak (espeak-ng speaks the simulated voice's replies)"
    elif settings.AURA_SIMULATED_TTS_VOICE == "espeak":
        summary = "tone (espeak-ng is not installed: replies play as a tone; install espeak-ng to hear words)"
    else:
        summary = "tone (AURA_SIMULATED_TTS_VOICE=tone: replies play as a tone)"
    if platform_keys():
        summary += "; assistants set to a provider's voice use that voice"
    return summary


def platform_keys() -> list[str]:
    return [name for name, key in (("OpenAI", settings.OPENAI_API_KEY), ("xAI", settings.XAI_API_KEY)) if key]


def provider_mode_summary() -> str:
    if keys := platform_keys():
        return f"{' and '.join(keys)} key(s) found: new assistants use them; the simulated providers stay available"
    return "SIMULATED (no OPENAI_API_KEY / XAI_API_KEY): canned replies, offline speech recognition"
