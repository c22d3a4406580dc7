"""Reads of assistants. Run inside the tenant's schema."""

from __future__ import annotations

from dataclasses import dataclass

from voice.audio.vad import TurnConfig
from voice.models import Assistant
from voice.providers.registry import ProviderChoice


@dataclass(frozen=True, slots=True)
class AssistantSnapshot:
    """What a voice session needs of its assistant, read once when the session opens."""

    id: int
    name: str
    instructions: str
    greeting: str
    language: str
    voice: str
    speech_speed: float
    turn: TurnConfig
    idle_timeout_s: int
    max_session_s: int
    providers: ProviderChoice


def assistant_snapshot(assistant_id: int) -> AssistantSnapshot | None:
    assistant = Assistant.objects.filter(pk=assistant_id).first()
    if assistant is None:
        return None
    return AssistantSnapshot(
        id=assistant.pk,
        name=assistant.name,
        instructions=assistant.instructions,
        greeting=assistant.greeting,
        language=assistant.language,
        voice=assistant.voice,
        speech_speed=assistant.speech_speed,
        turn=TurnConfig(
            aggressiveness=assistant.vad_aggressiveness,
            start_ms=assistant.speech_start_ms,
            end_silence_ms=assistant.end_silence_ms,
            max_utterance_ms=assistant.max_utterance_ms,
            barge_in_min_ms=assistant.barge_in_min_ms,
        ),
        idle_timeout_s=assistant.idle_timeout_s,
        max_session_s=assistant.max_session_s,
        providers=ProviderChoice(
            stt_provider=assistant.stt_provider,
            chat_provider=assistant.llm_provider,
            tts_provider=assistant.tts_provider,
        ),
    )


def default_assistant_id() -> int | None:
    return Assistant.objects.filter(is_default=True).values_list("pk", flat=True).first()
