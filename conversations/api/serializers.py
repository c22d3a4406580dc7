"""Conversations over the API: list rows, detail with turns, and the list's filters."""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.models import (
    EMOTION_CHOICES,
    Channel,
    Conversation,
    Delivery,
    EndReason,
    Handoff,
    Lead,
    Status,
    ToolCall,
    Turn,
    VisitorProfile,
)
from conversations.queries import emotion_summary
from conversations.visitors import InvalidVisitorIdError, check_visitor_id


def _visitor_id_rule(*, chosen_by_client: bool) -> Callable[[str], None]:
    """The visitor id rule of every door (conversations.visitors), as a serializer validator."""

    def validate(value: str) -> None:
        try:
            check_visitor_id(value, chosen_by_client=chosen_by_client)
        except InvalidVisitorIdError as invalid:
            raise serializers.ValidationError(str(invalid), code="invalid_visitor_id") from None

    return validate


CONVERSATION_FIELDS = (
    "id",
    "assistant_id",
    "visitor_id",
    "channel",
    "origin",
    "status",
    "end_reason",
    "started_at",
    "ended_at",
    "turn_count",
    "interrupted",
    "last_emotion",
    "upset_turns",
)
TURN_FIELDS = (
    "index",
    "role",
    "text",
    "heard_text",
    "interrupted",
    "delivery",
    "input_mode",
    "started_at",
    "ended_at",
    "endpoint_delay_ms",
    "stt_ms",
    "llm_first_token_ms",
    "tts_first_byte_ms",
    "first_audio_ms",
    "total_ms",
    "audio_ms",
    "played_ms",
    "input_tokens",
    "output_tokens",
    "tts_characters",
    "provider",
    "model",
    "intent",
    "emotion",
    "understood_by",
)


class ConversationSerializer(serializers.ModelSerializer):
    turn_count = serializers.IntegerField(read_only=True)
    interrupted = serializers.BooleanField(read_only=True, help_text="True when the visitor interrupted a reply.")
    end_reason = serializers.ChoiceField(choices=EndReason.choices, allow_blank=True, read_only=True)
    last_emotion = serializers.CharField(
        read_only=True, allow_null=True, help_text="The emotion of the visitor's last labelled turn."
    )
    upset_turns = serializers.IntegerField(read_only=True, help_text="Visitor turns that sounded frustrated or angry.")

    class Meta:
        model = Conversation
        fields = CONVERSATION_FIELDS
        read_only_fields = CONVERSATION_FIELDS


class TurnSerializer(serializers.ModelSerializer):
    delivery = serializers.ChoiceField(
        choices=Delivery.choices,
        allow_blank=True,
        read_only=True,
        help_text="Assistant turns: complete, interrupted (heard_text is what was heard), unheard (cut before "
        "any of it played, or the visitor left), speech_failed (sent as text only: a caller heard only "
        "heard_text), reply_failed (the language model failed; text is what it said before). Blank for visitors.",
    )
    emotion = serializers.ChoiceField(
        choices=EMOTION_CHOICES, allow_blank=True, read_only=True, help_text="Visitor turns: how the visitor sounded."
    )

    class Meta:
        model = Turn
        fields = TURN_FIELDS
        read_only_fields = TURN_FIELDS


class ToolCallSerializer(serializers.ModelSerializer):
    turn_index = serializers.IntegerField(source="turn.index", read_only=True, allow_null=True)

    class Meta:
        model = ToolCall
        fields = ("turn_index", "round", "name", "arguments", "result", "status", "duration_ms", "created_at")
        read_only_fields = fields


class EmotionSummarySerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Visitor turns per emotion.")
    dominant = serializers.CharField(help_text="The most frequent emotion other than neutral (else neutral).")
    last = serializers.CharField(help_text="The emotion of the visitor's last labelled turn.")


class ConversationDetailSerializer(ConversationSerializer):
    turns = TurnSerializer(many=True, read_only=True)
    tool_calls = ToolCallSerializer(many=True, read_only=True)
    emotions = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = (*CONVERSATION_FIELDS, "summary", "emotions", "turns", "tool_calls")
        read_only_fields = fields

    @extend_schema_field(EmotionSummarySerializer)
    def get_emotions(self, conversation: Conversation) -> dict[str, object]:
        return emotion_summary(conversation.turns.all())


class ConversationFilterSerializer(serializers.Serializer):
    started_after = serializers.DateTimeField(required=False, help_text="Started at or after (ISO 8601).")
    started_before = serializers.DateTimeField(required=False, help_text="Started before (ISO 8601).")
    visitor_id = serializers.CharField(
        required=False, max_length=128, validators=[_visitor_id_rule(chosen_by_client=False)]
    )
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    interrupted = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Only conversations with (or without) an interruption."
    )
    assistant_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    emotion = serializers.ChoiceField(
        choices=EMOTION_CHOICES,
        required=False,
        help_text="Only conversations where the visitor sounded so at least once.",
    )
    intent = serializers.RegexField(
        r"^[a-z][a-z0-9_]{1,63}$",
        required=False,
        help_text="Only conversations with a visitor turn of this intent (an assistant's intent or a built-in tool).",
    )


class ExportFilterSerializer(ConversationFilterSerializer):
    format = serializers.ChoiceField(choices=[("json", "JSON"), ("csv", "CSV")], default="json")


class LeadSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lead
        fields = ("id", "conversation_id", "visitor_id", "name", "email", "phone", "note", "created_at")
        read_only_fields = fields


class LeadFilterSerializer(serializers.Serializer):
    created_after = serializers.DateTimeField(required=False, help_text="Captured at or after (ISO 8601).")
    created_before = serializers.DateTimeField(required=False, help_text="Captured before (ISO 8601).")


class HandoffSerializer(serializers.ModelSerializer):
    class Meta:
        model = Handoff
        fields = ("id", "conversation_id", "reason", "contact", "transcript", "state", "created_at")
        read_only_fields = fields


class HandoffFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Handoff.State.choices, required=False)


class VisitorProfileSerializer(serializers.ModelSerializer):
    preferences = serializers.ListField(child=serializers.CharField(), read_only=True)
    open_requests = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = VisitorProfile
        fields = (
            "id",
            "visitor_id",
            "name",
            "preferences",
            "open_requests",
            "conversations",
            "last_conversation_id",
            "updated_at",
        )
        read_only_fields = fields


class TextConversationSerializer(serializers.Serializer):
    assistant_id = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Default: the organization's default assistant."
    )
    visitor_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=128,
        trim_whitespace=False,
        validators=[_visitor_id_rule(chosen_by_client=True)],
        help_text="Your id of the person (1–128 printable characters, not starting with anon:): memory follows "
        "it, on every channel. A widget reaches the same profile only with the identity hash (docs/widget.md).",
    )


class MessageSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=4000, help_text="What the visitor says (1–4,000 characters).")
    stream = serializers.BooleanField(
        default=False, help_text="true: the reply as server-sent events (text/event-stream) as it is produced."
    )


class ToolUseSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=[("ok", "ok"), ("error", "error")])
    duration_ms = serializers.IntegerField()


class MessageReplySerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    response_id = serializers.IntegerField()
    text = serializers.CharField(allow_blank=True, help_text="The assistant's whole reply.")
    status = serializers.ChoiceField(choices=[("completed", "completed"), ("failed", "failed")])
    tool_calls = ToolUseSerializer(many=True, help_text="Tools the assistant used for this reply, in order.")
    metrics = serializers.DictField(help_text="Timings (ms) and token counts of the reply.")
    conversation_ended = serializers.BooleanField(help_text="True when the assistant ended the conversation.")
