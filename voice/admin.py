"""Tenant admins configure their assistants."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils.html import escape, format_html

from aura.admin_sites import tenant_admin
from tenants.models import WidgetKey
from voice.forms import WidgetKeyForm
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


@admin.register(WidgetKey, site=tenant_admin)
class WidgetKeyAdmin(admin.ModelAdmin):
    """A tenant's widget keys: which assistant, which sites, and the tag to paste."""

    form = WidgetKeyForm
    list_display = ("name", "key", "is_active", "origins_list", "created_at")
    readonly_fields = ("key", "embed_snippet", "live_preview")
    fields = (
        "name",
        "key",
        "assistant",
        "origins",
        "is_active",
        "title",
        "accent_color",
        "placement",
        "embed_snippet",
        "live_preview",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[WidgetKey]:
        return super().get_queryset(request).filter(organization=request.tenant)

    def save_model(self, request: HttpRequest, obj: WidgetKey, form: object, change: bool) -> None:
        obj.organization = request.tenant
        super().save_model(request, obj, form, change)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WidgetKey]) -> None:
        for key in queryset:  # one by one, so each key leaves the lookup cache
            key.delete()

    @admin.display(description="Allowed origins")
    def origins_list(self, obj: WidgetKey) -> str:
        return ", ".join(obj.allowed_origins) or "— none: add your site —"

    @admin.display(description="Embed on your site")
    def embed_snippet(self, obj: WidgetKey) -> str:
        if not obj.pk:
            return "Save the key to get its snippet."
        return format_html("<code>{}</code>", embed_tag(obj, settings.AURA_PLATFORM_URL + static("aura/widget.js")))

    @admin.display(description="Live preview")
    def live_preview(self, obj: WidgetKey) -> str:
        """The real widget on this page: it works here when this admin's own origin is allowed."""
        if not obj.pk:
            return "Save the key to try it here."
        return format_html(
            "<p>The real widget, talking to this key's assistant, as it will look. It works on this page when "
            "this admin's address is among the allowed origins (it is, for a new organization's first key).</p>"
            '<aura-voice-widget key="{}" placement="inline" title="{}" accent="{}"></aura-voice-widget>'
            '<script src="{}" async></script>',
            obj.key,
            obj.title or "Preview",
            obj.accent_color,
            settings.AURA_PLATFORM_URL + static("aura/widget.js"),  # the widget talks to the platform host
        )


def embed_tag(key: WidgetKey, script_url: str) -> str:
    """The one tag a site pastes, with the key's appearance as data attributes."""
    attributes = [f'src="{script_url}"', f'data-key="{key.key}"']
    if key.title:
        attributes.append(f'data-title="{escape(key.title)}"')
    if key.accent_color:
        attributes.append(f'data-accent="{key.accent_color}"')
    if key.placement != "bottom-right":
        attributes.append(f'data-placement="{key.placement}"')
    return f"<script {' '.join(attributes)} async></script>"
