"""Assistants: what a tenant configures. Tenant schema."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Provider(models.TextChoices):
    SIMULATED = "simulated", "Simulated (no key needed)"
    LOCAL = "local", "Local, offline (PocketSphinx speech-to-text)"
    OPENAI = "openai", "OpenAI"
    XAI = "xai", "xAI Grok"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"


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
    speech_speed = models.FloatField(default=1.0, validators=[MinValueValidator(0.25), MaxValueValidator(4.0)])

    # Turn-taking (design notes §3)
    vad_aggressiveness = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(3)])
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
    idle_timeout_s = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(10), MaxValueValidator(3600)]
    )
    max_session_s = models.PositiveIntegerField(
        default=1800, validators=[MinValueValidator(60), MaxValueValidator(4 * 3600)]
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
