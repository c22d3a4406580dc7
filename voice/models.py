"""Assistants: what a tenant configures. Tenant schema."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from core.netguard import UnsafeURLError, check_url, provider_policy, tool_policy
from voice.audio.vad import SILERO, SPEECH_THRESHOLD_RANGE, WEBRTCVAD, semantic_silences_ordered


class Provider(models.TextChoices):
    SIMULATED = "simulated", "Simulated (no key needed)"
    LOCAL = "local", "Local, offline (PocketSphinx speech-to-text)"
    OPENAI = "openai", "OpenAI"
    XAI = "xai", "xAI Grok"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"


class SpeechDetector(models.TextChoices):
    WEBRTCVAD = WEBRTCVAD, "webrtcvad (fastest; fooled by noise and music)"
    SILERO = SILERO, "Silero VAD (neural; robust to noise and music, ~70 µs of CPU a frame)"


class RouterPolicy(models.TextChoices):
    FIXED = "fixed", "Fixed: always the primary model"
    FALLBACK = "fallback", "Fallback: the primary, then the fallbacks in order"
    CHEAPEST = "cheapest", "Cheapest healthy model for the request"
    FASTEST = "fastest", "Fastest healthy model (time to first token)"
    SMART = "smart", "Smart: simple turns to the primary, demanding ones to the strong model"


def _empty_parameters() -> dict[str, object]:
    return {"type": "object", "properties": {}}


def validate_model_refs(value: object) -> None:
    from voice.router.candidates import parse_candidates  # the router owns the "provider:model" format

    if not isinstance(value, list):
        raise ValidationError('Enter a list such as ["xai:grok-3-mini", "openai:gpt-4o-mini"].')
    try:
        parse_candidates(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def validate_model_ref(value: str) -> None:
    if value:
        validate_model_refs([value])


class BuiltinTool(models.TextChoices):
    BUSINESS_HOURS = "business_hours", "Business hours and “are you open now”"
    CAPTURE_LEAD = "capture_lead", "Capture a lead (name, email, phone, note)"
    HANDOFF = "handoff", "Hand off to a human"
    END_CONVERSATION = "end_conversation", "End the conversation"
    SEARCH_KNOWLEDGE = "search_knowledge", "Search the knowledge base"


def validate_builtin_tools(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError('Enter a list of tool names such as ["business_hours", "capture_lead"].')
    unknown = sorted(set(value) - set(BuiltinTool.values))
    if unknown:
        raise ValidationError(f"Unknown tools: {', '.join(unknown)}. Choose from {', '.join(BuiltinTool.values)}.")


INTENT_NAME_PATTERN = r"^[a-z][a-z0-9_]{1,47}$"
MAX_INTENTS = 30
MAX_INTENT_EXAMPLES = 20


def validate_intents(value: object) -> None:
    """The assistant's intents: [{"name": "book_table", "examples": ["I'd like to book a table", …]}, …]."""
    if not isinstance(value, list):
        raise ValidationError('Enter a list such as [{"name": "book_table", "examples": ["book a table"]}].')
    if len(value) > MAX_INTENTS:
        raise ValidationError(f"At most {MAX_INTENTS} intents.")
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict) or set(item) != {"name", "examples"}:
            raise ValidationError('Each intent is {"name": …, "examples": […]}.')
        name, examples = item["name"], item["examples"]
        if not isinstance(name, str) or not re.fullmatch(INTENT_NAME_PATTERN, name):
            raise ValidationError(f"“{name}”: an intent's name is lowercase letters, digits and underscores.")
        if name in BuiltinTool.values:
            raise ValidationError(f"“{name}” is a built-in tool's name, which is an intent already.")
        if name in seen:
            raise ValidationError(f"“{name}” appears twice.")
        seen.add(name)
        if (
            not isinstance(examples, list)
            or not 1 <= len(examples) <= MAX_INTENT_EXAMPLES
            or not all(isinstance(e, str) and 0 < len(e.strip()) <= 200 for e in examples)
        ):
            raise ValidationError(
                f"“{name}”: give 1 to {MAX_INTENT_EXAMPLES} example phrases of at most 200 characters."
            )


class Assistant(models.Model):
    name = models.CharField(max_length=100)
    instructions = models.TextField(
        default="You are a friendly, concise voice assistant. Answer in one to three short sentences."
    )
    greeting = models.CharField(max_length=300, blank=True, default="Hello! How can I help you today?")
    language = models.CharField(max_length=16, default="en")
    is_default = models.BooleanField(default=False)

    llm_provider = models.CharField(max_length=32, choices=Provider.choices, default=Provider.SIMULATED)
    llm_model = models.CharField(max_length=100, default="simulated-chat")
    stt_provider = models.CharField(max_length=32, choices=Provider.choices, default=Provider.LOCAL)
    stt_model = models.CharField(max_length=100, default="pocketsphinx-en-us")
    tts_provider = models.CharField(max_length=32, choices=Provider.choices, default=Provider.SIMULATED)
    tts_model = models.CharField(max_length=100, default="simulated-tts")
    voice = models.CharField(max_length=64, default="alloy")
    openai_compatible_base_url = models.URLField(
        blank=True,
        help_text="For the OpenAI-compatible provider: the server's base URL, e.g. http://vllm.internal:8000/v1",
    )

    # Routing (design notes §4). Models are written "provider:model".
    router_policy = models.CharField(max_length=16, choices=RouterPolicy.choices, default=RouterPolicy.FIXED)
    llm_fallbacks = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_model_refs],
        help_text='Other chat models the router may use, in order, e.g. ["xai:grok-3-mini"].',
    )
    smart_strong_llm = models.CharField(
        max_length=140,
        blank=True,
        validators=[validate_model_ref],
        help_text='Smart policy: the strong model for demanding turns, e.g. "openai:gpt-4o".',
    )
    smart_long_words = models.PositiveIntegerField(
        default=25,
        validators=[MinValueValidator(3), MaxValueValidator(500)],
        help_text="Smart policy: a visitor message longer than this many words is demanding.",
    )
    smart_many_tools = models.PositiveIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Smart policy: a turn offering at least this many tools, or following a tool call, is demanding.",
    )
    llm_first_token_timeout_ms = models.PositiveIntegerField(
        default=2500,
        validators=[MinValueValidator(200), MaxValueValidator(30000)],
        help_text="A chat attempt without a first token by then is abandoned for the next candidate.",
    )
    stt_fallbacks = models.JSONField(default=list, blank=True, validators=[validate_model_refs])
    stt_timeout_ms = models.PositiveIntegerField(
        default=4000,
        validators=[MinValueValidator(200), MaxValueValidator(30000)],
        help_text="A speech-to-text attempt without a first result by then is abandoned for the next candidate.",
    )
    tts_fallbacks = models.JSONField(default=list, blank=True, validators=[validate_model_refs])
    tts_first_byte_timeout_ms = models.PositiveIntegerField(
        default=2000,
        validators=[MinValueValidator(200), MaxValueValidator(30000)],
        help_text="A text-to-speech attempt without audio by then is abandoned for the next candidate.",
    )
    speech_speed = models.FloatField(default=1.0, validators=[MinValueValidator(0.25), MaxValueValidator(4.0)])

    # Turn-taking (design notes §3)
    speech_detector = models.CharField(
        max_length=16,
        choices=SpeechDetector.choices,
        default=SpeechDetector.WEBRTCVAD,
        help_text="What tells speech from silence and noise. Where Silero VAD cannot be loaded, webrtcvad is used.",
    )
    vad_aggressiveness = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(3)], help_text="webrtcvad: 0 (least) to 3 (most) aggressive."
    )
    speech_threshold = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(SPEECH_THRESHOLD_RANGE[0]), MaxValueValidator(SPEECH_THRESHOLD_RANGE[1])],
        help_text="Silero VAD: speech probability (0.1-0.95) that starts speech; it ends 0.15 below it. Higher "
        "ignores more noise and music, lower misses less quiet speech.",
    )
    speech_start_ms = models.PositiveIntegerField(
        default=120,
        validators=[MinValueValidator(40), MaxValueValidator(1000)],
        help_text="Voiced audio needed before speech counts as started.",
    )
    end_silence_ms = models.PositiveIntegerField(
        default=600,
        validators=[MinValueValidator(200), MaxValueValidator(3000)],
        help_text="Silence that ends the visitor's turn.",
    )
    max_utterance_ms = models.PositiveIntegerField(
        default=30000, validators=[MinValueValidator(2000), MaxValueValidator(120000)]
    )
    barge_in_min_ms = models.PositiveIntegerField(
        default=250,
        validators=[MinValueValidator(60), MaxValueValidator(3000)],
        help_text="While the assistant speaks, speech must last this long to interrupt it.",
    )
    # Semantic end of turn (voice.pipeline.turn_end)
    semantic_turn_end = models.BooleanField(
        default=False,
        help_text="Listen to what was said, not only to the silence: a short pause is transcribed; an unfinished "
        "sentence (“a table for…”, “um”, a number being read out) waits longer, a complete question is answered "
        "sooner.",
    )
    preemptive_replies = models.BooleanField(
        default=True,
        help_text="Start the reply during the visitor's pause, before the turn is confirmed: its audio is held and "
        "released the instant the turn ends, or thrown away unheard if the visitor goes on speaking (its tokens "
        "are still billed).",
    )
    turn_min_silence_ms = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(100), MaxValueValidator(1500)],
        help_text="Semantic end of turn: the silence after which a complete question or answer is answered.",
    )
    turn_max_silence_ms = models.PositiveIntegerField(
        default=2000,
        validators=[MinValueValidator(600), MaxValueValidator(5000)],
        help_text="Semantic end of turn: the longest wait for a visitor who sounds unfinished.",
    )
    idle_timeout_s = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(10), MaxValueValidator(3600)]
    )
    max_session_s = models.PositiveIntegerField(
        default=1800, validators=[MinValueValidator(60), MaxValueValidator(4 * 3600)]
    )

    # What the assistant can do (voice.tools) and remember (voice.memory)
    tools = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_builtin_tools],
        help_text="Built-in tools this assistant may use.",
    )
    remember_visitors = models.BooleanField(
        default=True,
        help_text="Keep a short profile per returning visitor (name, preferences, open requests) and greet them "
        "with it. Visitors can ask to be forgotten.",
    )
    recent_turns = models.PositiveIntegerField(
        default=12,
        validators=[MinValueValidator(4), MaxValueValidator(100)],
        help_text="Turns the model sees word for word; older turns are summarised in the background.",
    )

    # Emotion and intent of each visitor turn (voice.understanding)
    intents = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_intents],
        help_text="What visitors come for, each with example phrases; the built-in tools count as intents too.",
    )
    understand_with_model = models.BooleanField(
        default=False,
        help_text="When the fast rules are unsure of a turn's emotion or intent, ask the chat model in the "
        "background (its tokens are billed; the reply never waits for it).",
    )
    escalate_upset_visitors = models.BooleanField(
        default=False,
        help_text="A frustrated or angry visitor is answered by the smart policy's strong model and offered a human.",
    )
    voice_follows_emotion = models.BooleanField(
        default=False,
        help_text="The voice answers an upset or confused visitor calmly and a little slower, a happy one "
        "brightly (tone where the voice supports instructions, e.g. OpenAI gpt-4o-mini-tts; speed everywhere).",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_assistant",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.semantic_turn_end and not semantic_silences_ordered(
            self.turn_min_silence_ms or 0, self.end_silence_ms or 0, self.turn_max_silence_ms or 0
        ):
            raise ValidationError(
                {
                    "turn_min_silence_ms": "With semantic end of turn, the shortest silence must be shorter than the "
                    "end silence (at equal lengths the turn ends before the words are judged), and the end silence "
                    "must not exceed the longest wait."
                }
            )
        if self.openai_compatible_base_url:
            try:
                check_url(self.openai_compatible_base_url, policy=provider_policy)
            except UnsafeURLError as exc:
                raise ValidationError({"openai_compatible_base_url": str(exc)}) from None


class ProviderKey(models.Model):
    """A tenant's own key for one provider, used instead of the platform's. Encrypted at rest."""

    provider = models.CharField(
        max_length=32,
        choices=[(p.value, p.label) for p in (Provider.OPENAI, Provider.XAI, Provider.OPENAI_COMPATIBLE)],
        unique=True,
    )
    encrypted_key = models.TextField(editable=False)
    key_hint = models.CharField(max_length=16, editable=False, help_text="The key, masked")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider"]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} key {self.key_hint}"


TOOL_NAME_PATTERN = r"^[a-z][a-z0-9_]{1,62}$"


def validate_parameters_schema(value: object) -> None:
    """A tool's parameters: a JSON Schema object, as function calling expects."""
    from voice.tools.schema import SchemaError, check_parameters_schema

    try:
        check_parameters_schema(value)
    except SchemaError as exc:
        raise ValidationError(str(exc)) from None


def validate_headers(value: object) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError('Enter an object of header names and values, e.g. {"X-Api-Key": "…"}.')
    for name, header_value in value.items():
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name):
            raise ValidationError(f"{name!r} is not a valid header name: use letters, digits and hyphens.")
        if name.lower() in _RESERVED_HEADERS:
            raise ValidationError(f"The platform sets {name} itself.")
        if _CONTROL_CHARACTERS.search(header_value):
            # CR or LF would end the header and start another one (header injection); NUL cuts it short.
            raise ValidationError(
                f"The value of {name} contains a line break or another control character; "
                "a header value is one line of text."
            )


_RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "aura-signature", "transfer-encoding"})
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed, as in HTTP
HEADERS_STAY_WITH_THE_URL = (
    "Changing the URL's scheme, host or port removes the stored headers (often credentials) unless the "
    "same change sets them again: they were written for the old address."
)


def same_destination(url: str, other: str) -> bool:
    """Whether two URLs reach the same place: scheme, host and port (paths and queries may differ)."""

    def origin(value: str) -> tuple[str, str, int | None]:
        parts = urlsplit(value)
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            port = -1
        return parts.scheme.lower(), (parts.hostname or "").lower().rstrip("."), port

    return origin(url) == origin(other)


def _new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


class HttpTool(models.Model):
    """A tenant-defined tool: the model fills in the parameters, the platform calls the URL, signed."""

    class Method(models.TextChoices):
        GET = "GET"
        POST = "POST"
        PUT = "PUT"
        PATCH = "PATCH"
        DELETE = "DELETE"

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[RegexValidator(TOOL_NAME_PATTERN, "Use lowercase letters, digits and underscores.")],
        help_text="What the model calls, e.g. check_order_status.",
    )
    description = models.TextField(help_text="When the assistant should use this tool: the model reads this.")
    parameters = models.JSONField(
        default=_empty_parameters,
        validators=[validate_parameters_schema],
        help_text="JSON Schema of the arguments, e.g. "
        '{"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}.',
    )
    url = models.URLField(max_length=500)
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.POST)
    headers = models.JSONField(
        default=dict, blank=True, validators=[validate_headers], help_text="Extra headers sent with every call."
    )
    timeout_ms = models.PositiveIntegerField(
        default=5000, validators=[MinValueValidator(200), MaxValueValidator(15000)]
    )
    signing_secret = models.CharField(
        max_length=64,
        default=_new_signing_secret,
        editable=False,
        help_text="Requests carry AURA-Signature: t=<unix time>,v1=<HMAC-SHA256 of “t.body” with this secret>.",
    )
    assistants = models.ManyToManyField(Assistant, related_name="http_tools", blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.name in BuiltinTool.values:
            raise ValidationError({"name": "That name belongs to a built-in tool."})
        if self.url:
            try:
                check_url(self.url, policy=tool_policy)
            except UnsafeURLError as exc:
                raise ValidationError({"url": str(exc)}) from None
