"""Reads of assistants. Run inside the tenant's schema."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from core.crypto import DecryptionError, Secret, decrypt
from tenants.models import WidgetKey
from voice.audio.vad import SILERO, TurnConfig, semantic_silences_ordered
from voice.models import Assistant, ProviderKey
from voice.providers.registry import RoutingConfig
from voice.router.candidates import Candidate, chain, parse_candidate, parse_candidates
from voice.router.policies import CHEAPEST, FASTEST, FIXED, SMART, SmartRules
from voice.text.intent import IntentSpec
from voice.tools.http import HttpToolConfig, http_tool_config

logger = logging.getLogger(__name__)
_DEFAULT_TURN = TurnConfig()
# Preemptive replies start at this much silence: short enough that the reply's first audio is ready when
# the end silence (600 ms by default) confirms the turn, longer than the pause at a comma (160-180 ms in
# espeak-ng's speech): a visitor who goes on after it costs the tokens of a reply nobody hears (wasted).
PREEMPTIVE_PAUSE_MS = 200


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
    routing: RoutingConfig
    tools: tuple[str, ...] = ()
    http_tools: tuple[HttpToolConfig, ...] = ()
    remember_visitors: bool = True
    recent_turns: int = 12
    intents: tuple[IntentSpec, ...] = ()
    understand_with_model: bool = False
    escalate_upset_visitors: bool = False
    voice_follows_emotion: bool = False
    preemptive_replies: bool = False  # start the reply at a pause, before the turn ends (voice.parts.turns)


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
        turn=turn_config(assistant),
        idle_timeout_s=assistant.idle_timeout_s,
        max_session_s=assistant.max_session_s,
        routing=routing_config(assistant),
        tools=tuple(assistant.tools),
        http_tools=tuple(http_tool_config(row) for row in assistant.http_tools.filter(is_active=True)),
        remember_visitors=assistant.remember_visitors,
        recent_turns=assistant.recent_turns,
        intents=tuple(IntentSpec(i["name"], tuple(i["examples"])) for i in assistant.intents),
        understand_with_model=assistant.understand_with_model,
        escalate_upset_visitors=assistant.escalate_upset_visitors,
        voice_follows_emotion=assistant.voice_follows_emotion,
        preemptive_replies=assistant.preemptive_replies,
    )


def turn_config(assistant: Assistant) -> TurnConfig:
    """The assistant's turn-taking settings. Validated on save; a row edited around the validation must not
    fail every session of the assistant: a setting TurnConfig refuses takes its default (with a warning),
    and semantic end of turn with disordered silences is off (fixed silence)."""
    settings = {
        "aggressiveness": assistant.vad_aggressiveness,
        "detector": assistant.speech_detector,
        "speech_threshold": assistant.speech_threshold,
        "start_ms": assistant.speech_start_ms,
        "end_silence_ms": assistant.end_silence_ms,
        "max_utterance_ms": assistant.max_utterance_ms,
        "barge_in_min_ms": assistant.barge_in_min_ms,
    }
    for name, value in settings.items():
        try:
            TurnConfig(**{name: value})  # TurnConfig's own checks, this setting alone
        except ValueError as exc:
            logger.warning("assistant %s: %s; %s uses its default", assistant.pk, exc, name)
            settings[name] = getattr(_DEFAULT_TURN, name)
    try:
        base = TurnConfig(**settings)
    except ValueError as exc:  # settings valid alone but not together (max_utterance_ms vs pre-roll)
        logger.warning("assistant %s: %s; the default turn-taking settings apply", assistant.pk, exc)
        base = TurnConfig(detector=settings["detector"], speech_threshold=settings["speech_threshold"])
    semantic = assistant.semantic_turn_end
    if semantic and not semantic_silences_ordered(
        assistant.turn_min_silence_ms, base.end_silence_ms, assistant.turn_max_silence_ms
    ):
        logger.warning(
            "assistant %s: semantic end of turn needs turn_min_silence_ms < end_silence_ms <= turn_max_silence_ms; "
            "the turn ends after the fixed silence",
            assistant.pk,
        )
        semantic = False
    return replace(
        base,
        semantic=semantic,
        min_silence_ms=assistant.turn_min_silence_ms,
        max_silence_ms=assistant.turn_max_silence_ms,
        pause_ms=PREEMPTIVE_PAUSE_MS if assistant.preemptive_replies else 0,
    )


def routing_config(assistant: Assistant) -> RoutingConfig:
    return replace(routing_config_without_keys(assistant), tenant_keys=tenant_provider_keys())


def routing_config_without_keys(assistant: Assistant) -> RoutingConfig:
    llm = Candidate(assistant.llm_provider, assistant.llm_model)
    strong = parse_candidate(assistant.smart_strong_llm) if assistant.smart_strong_llm else None
    smart = strong is not None and assistant.router_policy == SMART
    return RoutingConfig(
        llm=chain(llm, [*([strong] if smart else []), *parse_candidates(assistant.llm_fallbacks)]),
        stt=chain(Candidate(assistant.stt_provider, assistant.stt_model), parse_candidates(assistant.stt_fallbacks)),
        tts=chain(Candidate(assistant.tts_provider, assistant.tts_model), parse_candidates(assistant.tts_fallbacks)),
        policy=assistant.router_policy,
        smart=SmartRules(
            strong=strong,
            long_words=assistant.smart_long_words,
            many_tools=assistant.smart_many_tools,
            upset_to_strong=assistant.escalate_upset_visitors,
        ),
        llm_bound_s=assistant.llm_first_token_timeout_ms / 1000,
        stt_bound_s=assistant.stt_timeout_ms / 1000,
        tts_bound_s=assistant.tts_first_byte_timeout_ms / 1000,
        openai_compatible_base_url=assistant.openai_compatible_base_url,
    )


def describe_routing(config: RoutingConfig) -> list[str]:
    """The routing rules in words, for the tenant admin."""
    primary, others = config.llm[0], [c.key for c in config.llm[1:]]
    rest = f" Then, if it is unavailable: {', '.join(others)}." if others else ""
    if config.policy == SMART:
        strong = config.smart.strong.key if config.smart.strong else ""
        fallbacks = [key for key in others if key != strong]
        return config.smart.describe(primary) + ([f"Fallbacks: {', '.join(fallbacks)}."] if fallbacks else [])
    if config.policy == FIXED:
        return [f"Every turn goes to {primary.key}; if it is unavailable the visitor is told, nothing else is tried."]
    if config.policy == CHEAPEST and others:
        return [
            f"Each turn goes to the cheapest healthy model among {primary.key}, {', '.join(others)}, "
            "at list prices for the request's estimated size."
        ]
    if config.policy == FASTEST:
        return [
            f"Each turn goes to the healthy model with the lowest average time to first token among "
            f"{', '.join([primary.key, *others])}."
        ]
    return [f"Every turn goes to {primary.key} first.{rest}"]


def speech_detector_problem(detector: str) -> str | None:
    """Why an assistant set to `detector` listens with webrtcvad instead, or None (for the tenant admin)."""
    if detector != SILERO:
        return None
    from voice.audio.silero import silero_problem

    problem = silero_problem()
    return (
        f"Silero VAD cannot be used on this server, so this assistant listens with webrtcvad: {problem}."
        if problem
        else None
    )


def tenant_provider_keys() -> dict[str, Secret]:
    """The organization's own provider keys, decrypted for this session only. Never logged."""
    keys: dict[str, Secret] = {}
    for key in ProviderKey.objects.all():
        try:
            keys[key.provider] = Secret(decrypt(key.encrypted_key))
        except DecryptionError:
            logger.error("the %s key %s cannot be decrypted with the configured keys; skipped", key.provider, key.pk)
    return keys


def assistant_exists(assistant_id: int) -> bool:
    """Whether the current organization has the assistant (tenants asks, to check a widget key's)."""
    return Assistant.objects.filter(pk=assistant_id).exists()


def default_assistant_id() -> int | None:
    return Assistant.objects.filter(is_default=True).values_list("pk", flat=True).first()


def assistant_widget_key(assistant_id: int) -> WidgetKey | None:
    """The current organization's first active widget key bound to the assistant (its "Try it" panel)."""
    from django.db import connection

    return (
        WidgetKey.objects.filter(organization_id=connection.tenant.pk, assistant_id=assistant_id, is_active=True)
        .order_by("pk")
        .first()
    )
