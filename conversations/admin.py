"""Tenant admins browse conversations with their turns."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from aura.admin_sites import tenant_admin
from conversations.models import Conversation, Turn


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    can_delete = False
    fields = (
        "index",
        "role",
        "input_mode",
        "text",
        "heard_text",
        "interrupted",
        "endpoint_delay_ms",
        "stt_ms",
        "llm_first_token_ms",
        "tts_first_byte_ms",
        "first_audio_ms",
        "provider",
        "model",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


@admin.register(Conversation, site=tenant_admin)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("started_at", "assistant", "channel", "visitor_id", "status", "end_reason", "turn_count")
    list_filter = ("status", "channel", "end_reason", "assistant", "started_at")
    search_fields = ("visitor_id", "turns__text")
    date_hierarchy = "started_at"
    readonly_fields = (
        "id",
        "assistant",
        "visitor_id",
        "channel",
        "origin",
        "status",
        "end_reason",
        "started_at",
        "ended_at",
    )
    inlines = [TurnInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).select_related("assistant").annotate(turn_total=Count("turns"))

    @admin.display(description="Turns", ordering="turn_total")
    def turn_count(self, obj: Conversation) -> int:
        return obj.turn_total  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
