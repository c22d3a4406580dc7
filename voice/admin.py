"""Tenant admins configure their assistants."""

from __future__ import annotations

from django.contrib import admin

from aura.admin_sites import tenant_admin
from voice.models import Assistant


@admin.register(Assistant, site=tenant_admin)
class AssistantAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "is_default",
        "llm_provider",
        "llm_model",
        "tts_provider",
        "voice",
        "updated_at",
    )
    search_fields = ("name",)
    fieldsets = (
        (
            None,
            {"fields": ("name", "is_default", "language", "instructions", "greeting")},
        ),
        (
            "Speech",
            {
                "fields": (
                    "stt_provider",
                    "stt_model",
                    "tts_provider",
                    "tts_model",
                    "voice",
                    "speech_speed",
                )
            },
        ),
        ("Language model", {"fields": ("llm_provider", "llm_model")}),
        (
            "Turn-taking",
            {
                "fields": (
                    "vad_aggressiveness",
                    "speech_start_ms",
                    "end_silence_ms",
                    "max_utterance_ms",
                    "barge_in_min_ms",
                    "idle_timeout_s",
                    "max_session_s",
                ),
                "description": "How the assistant decides that the visitor started or finished speaking.",
            },
        ),
    )
