"""Conversations and their turns. Tenant schema."""

from __future__ import annotations

import uuid

from django.db import connection, models

from conversations.emotions import Emotion


class Channel(models.TextChoices):
    VOICE = "voice", "Voice"
    TEXT = "text", "Text (widget)"
    API = "api", "API"
    PHONE = "phone", "Phone"


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
    ASSISTANT_ENDED = "assistant_ended", "Ended by the assistant"
    TRANSFERRED = "transferred", "Transferred to a person (phone)"
    ERROR = "error", "Error"


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    assistant = models.ForeignKey("voice.Assistant", on_delete=models.PROTECT, related_name="conversations")
    visitor_id = models.CharField(max_length=128, blank=True, db_index=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.VOICE)
    origin = models.CharField(max_length=255, blank=True)
    # Phone calls (telephony): who called (or was called), redacted when the organization redacts, and
    # Twilio's call SID.
    caller_number = models.CharField(max_length=32, blank=True)
    call_sid = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The WebSocket connection that holds the conversation now: after a resume, the old connection's
    # late "disconnected" must not end the conversation the new one carries on.
    connection = models.CharField(max_length=36, blank=True, editable=False)
    # Memory: a running summary of the turns before ``summary_through`` (voice.memory), written in the background.
    summary = models.TextField(blank=True)
    summary_through = models.PositiveIntegerField(
        default=0, help_text="How many of the conversation's earlier messages the summary covers."
    )
    visitor_forgotten = models.BooleanField(
        default=False, help_text="The visitor asked to be forgotten here: nothing is learnt from this conversation."
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Conversation {self.id} ({self.started_at:%Y-%m-%d %H:%M})"


def recording_path(turn: Turn, filename: str) -> str:
    """Recordings are filed per organization: one schema's files never sit among another's."""
    return f"recordings/{connection.schema_name}/{turn.started_at:%Y/%m}/{filename}"


class Role(models.TextChoices):
    VISITOR = "visitor", "Visitor"
    ASSISTANT = "assistant", "Assistant"


class Delivery(models.TextChoices):
    """What became of an assistant's reply on its way to the visitor (visitor turns: blank)."""

    COMPLETE = "complete", "Complete"  # heard (or, in a text session, shown) to its end
    INTERRUPTED = "interrupted", "Interrupted"  # cut off: heard_text is the part the visitor heard
    UNHEARD = "unheard", "Unheard"  # produced, but the visitor heard none of it (cut before it played, or gone)
    SPEECH_FAILED = "speech_failed", "Speech failed"  # text-to-speech failed: the reply went out as text only
    REPLY_FAILED = "reply_failed", "Reply failed"  # the language model failed: text is what it gave before


EMOTION_CHOICES = [(emotion.value, emotion.value.capitalize()) for emotion in Emotion]


class Turn(models.Model):
    """One utterance: the visitor's (transcribed or typed) or the assistant's (with what was heard)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True, help_text="For the assistant: everything it generated.")
    heard_text = models.TextField(blank=True, help_text="For the assistant: what the visitor actually heard.")
    interrupted = models.BooleanField(default=False)
    delivery = models.CharField(
        max_length=16,
        choices=Delivery.choices,
        blank=True,
        db_index=True,
        help_text="For the assistant: complete, interrupted (heard_text is what was heard), unheard, "
        "speech_failed (sent as text only) or reply_failed (the language model failed).",
    )
    input_mode = models.CharField(
        max_length=8, blank=True, help_text="voice, text or dtmf (keys pressed on a phone), for visitor turns"
    )
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
    # What a visitor's turn showed (voice.understanding): by the fast rules, or the chat model when they were unsure.
    intent = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="An intent of the assistant or a built-in tool."
    )
    emotion = models.CharField(max_length=16, choices=EMOTION_CHOICES, blank=True, db_index=True)
    understood_by = models.CharField(max_length=8, blank=True, help_text="rules, or model (the slower tier)")
    audio = models.FileField(
        upload_to=recording_path,
        blank=True,
        help_text="The visitor's speech, only when the organization records audio.",
    )
    # Chosen by the writer before the first attempt: a write retried after its connection dropped finds the
    # turn it may already have committed (null for turns stored before keys, and for those written without).
    key = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["conversation", "index"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "index"], name="turn_index_unique"),
            models.UniqueConstraint(fields=["conversation", "key"], name="turn_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} #{self.index}"


class ToolCall(models.Model):
    """One tool the assistant called during a turn: what it asked, what it got, how long it took."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="tool_calls")
    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="tool_calls", null=True, blank=True)
    round = models.PositiveSmallIntegerField(default=1)
    name = models.CharField(max_length=64, db_index=True)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class Lead(models.Model):
    """A prospect the assistant captured: validated contact details and what they want."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="leads"
    )
    visitor_id = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=120)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email or self.phone}>"


class Handoff(models.Model):
    """A visitor asked for a human: the request, how to reach them, and the transcript so far."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="handoffs")
    reason = models.TextField()
    contact = models.CharField(max_length=200, blank=True)
    transcript = models.TextField(help_text="The conversation up to the request.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Hand-off {self.pk}: {self.reason[:60]}"


class VisitorProfile(models.Model):
    """What an assistant remembers about a returning visitor (voice.memory). Deleted when they ask."""

    visitor_id = models.CharField(max_length=128, unique=True)
    name = models.CharField(max_length=120, blank=True)
    preferences = models.JSONField(default=list, blank=True)
    open_requests = models.JSONField(default=list, blank=True)
    conversations = models.PositiveIntegerField(default=0)
    last_conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name or self.visitor_id

    @property
    def is_empty(self) -> bool:
        return not (self.name or self.preferences or self.open_requests)
