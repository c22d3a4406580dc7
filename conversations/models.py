"""Conversations and their turns. Tenant schema."""

from __future__ import annotations

import uuid

from django.db import models


class Channel(models.TextChoices):
    VOICE = "voice", "Voice"
    TEXT = "text", "Text (widget)"
    API = "api", "API"


class Status(models.TextChoices):
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"


class EndReason(models.TextChoices):
    VISITOR_ENDED = "visitor_ended", "Visitor ended"
    DISCONNECTED = "disconnected", "Disconnected"
    IDLE_TIMEOUT = "idle_timeout", "Idle timeout"
    MAX_DURATION = "max_duration", "Maximum duration"
    QUOTA = "quota", "Quota reached"
    PROTOCOL_ABUSE = "protocol_abuse", "Protocol abuse"
    SERVER_SHUTDOWN = "server_shutdown", "Server shutdown"
    ERROR = "error", "Error"


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    assistant = models.ForeignKey("voice.Assistant", on_delete=models.PROTECT, related_name="conversations")
    visitor_id = models.CharField(max_length=128, blank=True, db_index=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.VOICE)
    origin = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The WebSocket connection that holds the conversation now: after a resume, the old connection's
    # late "disconnected" must not end the conversation the new one carries on.
    connection = models.CharField(max_length=36, blank=True, editable=False)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Conversation {self.id} ({self.started_at:%Y-%m-%d %H:%M})"


class Role(models.TextChoices):
    VISITOR = "visitor", "Visitor"
    ASSISTANT = "assistant", "Assistant"


class Turn(models.Model):
    """One utterance: the visitor's (transcribed or typed) or the assistant's (with what was heard)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True, help_text="For the assistant: everything it generated.")
    heard_text = models.TextField(blank=True, help_text="For the assistant: what the visitor actually heard.")
    interrupted = models.BooleanField(default=False)
    input_mode = models.CharField(max_length=8, blank=True, help_text="voice or text, for visitor turns")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    # Per-turn timings in milliseconds (design notes §3); null where a stage did not run.
    endpoint_delay_ms = models.FloatField(null=True, blank=True, help_text="End of speech → turn detected")
    stt_ms = models.FloatField(null=True, blank=True)
    llm_first_token_ms = models.FloatField(null=True, blank=True)
    tts_first_byte_ms = models.FloatField(null=True, blank=True)
    first_audio_ms = models.FloatField(null=True, blank=True, help_text="Turn detected → first reply audio sent")
    total_ms = models.FloatField(null=True, blank=True)
    audio_ms = models.FloatField(null=True, blank=True, help_text="Audio length: the visitor's speech or the reply")
    played_ms = models.FloatField(null=True, blank=True)

    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    tts_characters = models.PositiveIntegerField(default=0)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=100, blank=True)
    route = models.JSONField(
        default=dict,
        blank=True,
        help_text="How the provider was chosen: policy, reason, and every attempt with its outcome.",
    )

    class Meta:
        ordering = ["conversation", "index"]
        constraints = [models.UniqueConstraint(fields=["conversation", "index"], name="turn_index_unique")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} #{self.index}"
