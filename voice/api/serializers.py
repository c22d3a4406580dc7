"""Assistants over the API: the fields of the admin's form, flat, with the same validation (model full_clean)."""

from __future__ import annotations

from rest_framework import serializers

from voice.models import (
    HEADERS_STAY_WITH_THE_URL,
    INTENT_NAME_PATTERN,
    MAX_INTENT_EXAMPLES,
    MAX_INTENTS,
    Assistant,
    BuiltinTool,
    HttpTool,
)
from voice.offerings import OFFERING_FIELDS, offering_errors


def _model_refs() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=140),
        max_length=10,
        required=False,
        help_text='"provider:model" strings, e.g. ["xai:grok-3-mini"].',
    )


ASSISTANT_FIELDS = (
    "id",
    "name",
    "is_default",
    "language",
    "instructions",
    "greeting",
    # speech
    "stt_provider",
    "stt_model",
    "tts_provider",
    "tts_model",
    "voice",
    "speech_speed",
    # language model and routing
    "llm_provider",
    "llm_model",
    "router_policy",
    "llm_fallbacks",
    "smart_strong_llm",
    "smart_long_words",
    "smart_many_tools",
    "llm_first_token_timeout_ms",
    "openai_compatible_base_url",
    "stt_fallbacks",
    "stt_timeout_ms",
    "tts_fallbacks",
    "tts_first_byte_timeout_ms",
    # turn-taking (VAD and barge-in)
    "speech_detector",
    "vad_aggressiveness",
    "speech_threshold",
    "speech_start_ms",
    "end_silence_ms",
    "max_utterance_ms",
    "barge_in_min_ms",
    "semantic_turn_end",
    "preemptive_replies",
    "turn_min_silence_ms",
    "turn_max_silence_ms",
    "idle_timeout_s",
    "max_session_s",
    # what it can do and remember
    "tools",
    "remember_visitors",
    "recent_turns",
    # emotion and intent
    "intents",
    "understand_with_model",
    "escalate_upset_visitors",
    "voice_follows_emotion",
    "created_at",
    "updated_at",
)


class IntentSerializer(serializers.Serializer):
    name = serializers.RegexField(INTENT_NAME_PATTERN, max_length=48, help_text="e.g. book_table")
    examples = serializers.ListField(
        child=serializers.CharField(max_length=200), min_length=1, max_length=MAX_INTENT_EXAMPLES
    )


class AssistantSerializer(serializers.ModelSerializer):
    llm_fallbacks = _model_refs()
    stt_fallbacks = _model_refs()
    tts_fallbacks = _model_refs()
    tools = serializers.ListField(
        child=serializers.ChoiceField(choices=BuiltinTool.choices),
        max_length=len(BuiltinTool.values),
        required=False,
        help_text="Built-in tools this assistant may use.",
    )
    intents = IntentSerializer(
        many=True,
        required=False,
        max_length=MAX_INTENTS,
        help_text="What visitors come for, each with example phrases (the built-in tools are intents already).",
    )

    class Meta:
        model = Assistant
        fields = ASSISTANT_FIELDS
        read_only_fields = ("id", "created_at", "updated_at")
        validators = []  # one default assistant: do_save_assistant moves the mark instead of refusing
        extra_kwargs = {"is_default": {"validators": []}}

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        """What the providers offer, as the admin's form checks it: the capabilities a request touches."""
        current = self.instance

        def value(name: str) -> object:
            return attrs[name] if name in attrs else getattr(current, name, None) or ""

        errors = offering_errors(
            {name: value(name) for name in OFFERING_FIELDS},
            touched=set(attrs),
        )
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


TOOL_FIELDS = (
    "id",
    "name",
    "description",
    "parameters",
    "url",
    "method",
    "headers",
    "header_names",
    "timeout_ms",
    "signing_secret_hint",
    "assistant_ids",
    "is_active",
    "created_at",
    "updated_at",
)


class HttpToolSerializer(serializers.ModelSerializer):
    """A tenant's HTTP tool. The signing secret is never listed: admins reveal it with ``…/secret/``.
    Changing the URL's scheme, host or port removes the stored headers unless the same request sets them."""

    parameters = serializers.JSONField(
        required=False,
        help_text='JSON Schema of the arguments, e.g. {"type": "object", "properties": {"id": {"type": "string"}}}.',
    )
    headers = serializers.DictField(
        child=serializers.CharField(max_length=2000),
        required=False,
        write_only=True,
        help_text="Extra headers sent with every call (often credentials): written, never read back. Names are "
        "letters, digits and hyphens; values are one line (no CR, LF or NUL). " + HEADERS_STAY_WITH_THE_URL,
    )
    header_names = serializers.SerializerMethodField(help_text="The names of the headers set (values are not shown).")
    assistant_ids = serializers.PrimaryKeyRelatedField(
        source="assistants",
        many=True,
        queryset=Assistant.objects.all(),
        required=False,
        help_text="Assistants that may call this tool.",
    )
    signing_secret_hint = serializers.SerializerMethodField(help_text="The secret's last characters.")

    class Meta:
        model = HttpTool
        fields = TOOL_FIELDS
        read_only_fields = ("id", "header_names", "signing_secret_hint", "created_at", "updated_at")
        extra_kwargs = {"url": {"help_text": "Where the platform calls. " + HEADERS_STAY_WITH_THE_URL}}
        validators = []  # the model's full_clean validates (unique name included) in do_save_http_tool

    def get_header_names(self, tool: HttpTool) -> list[str]:
        return sorted(tool.headers or {})

    def get_signing_secret_hint(self, tool: HttpTool) -> str:
        return "whsec_…" + tool.signing_secret[-4:]


class ToolSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True, help_text="whsec_…: the HMAC-SHA256 key of AURA-Signature.")
