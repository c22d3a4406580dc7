"""Tenant admins configure their assistants."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from redis.exceptions import RedisError

from core.admin_sites import StaffPage, platform_admin, tenant_admin
from tenants.actions import do_rotate_widget_identity_secret
from tenants.appearance import MIN_TEXT_CONTRAST, text_on
from tenants.embed import embed_tag
from tenants.models import WidgetKey
from voice.actions import do_save_http_tool
from voice.forms import AssistantForm, HttpToolForm, ProviderKeyForm, WidgetKeyForm, assistant_offerings
from voice.models import Assistant, HttpTool, ProviderKey, SpeechDetector
from voice.queries import assistant_widget_key, describe_routing, routing_config_without_keys, speech_detector_problem
from voice.router.health import reset_shared_health, shared_health
from voice.samples import voice_sample


@admin.register(Assistant, site=tenant_admin)
class AssistantAdmin(admin.ModelAdmin):
    form = AssistantForm
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
    readonly_fields = (
        "routing_rules",
        "http_tools_in_use",
        "knowledge_in_use",
        "speech_detector_status",
        "voice_sample",
    )
    change_form_template = "admin/aura_change_form.html"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (
            None,
            {
                "fields": ("name", "greeting", "instructions", "language", "is_default"),
                "description": "What visitors hear first, and how the assistant answers.",
            },
        ),
        (
            "Voice",
            {"fields": ("tts_provider", "tts_model", "voice", "voice_sample", "speech_speed")},
        ),
        (
            "Tools and knowledge",
            {
                "fields": ("tools", "http_tools_in_use", "knowledge_in_use", "remember_visitors"),
                "description": "Tools let the assistant act during a conversation; the knowledge base is searched "
                "with the “Search the knowledge base” tool.",
            },
        ),
        (
            "Advanced: chat model and routing",
            {
                "classes": ("collapse",),
                "fields": (
                    "llm_provider",
                    "llm_model",
                    "router_policy",
                    "llm_fallbacks",
                    "smart_strong_llm",
                    "smart_long_words",
                    "smart_many_tools",
                    "routing_rules",
                    "llm_first_token_timeout_ms",
                    "openai_compatible_base_url",
                ),
                "description": "Which model writes the replies, and what the router does when it is down or slow. "
                "An attempt that has not started answering in time is abandoned for the next model; nothing is "
                "retried once the visitor heard the start.",
            },
        ),
        (
            "Advanced: speech recognition and failover",
            {
                "classes": ("collapse",),
                "fields": (
                    "stt_provider",
                    "stt_model",
                    "stt_fallbacks",
                    "stt_timeout_ms",
                    "tts_fallbacks",
                    "tts_first_byte_timeout_ms",
                ),
            },
        ),
        (
            "Advanced: turn-taking",
            {
                "classes": ("collapse",),
                "fields": (
                    "speech_detector",
                    "speech_detector_status",
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
                ),
                "description": "How the assistant decides that the visitor started or finished speaking. Listening "
                "for unfinished sentences transcribes a short pause: a complete question is answered then, an "
                "unfinished sentence waits up to the longest wait, anything else ends after the end silence. Starting "
                "to answer during the pause saves most of the end silence: the answer is ready when the turn ends, "
                "and thrown away unheard if the visitor goes on.",
            },
        ),
        (
            "Advanced: memory, emotion and intent",
            {
                "classes": ("collapse",),
                "fields": (
                    "recent_turns",
                    "intents",
                    "understand_with_model",
                    "escalate_upset_visitors",
                    "voice_follows_emotion",
                ),
                "description": "Older turns beyond the recent ones are summarised. Each visitor turn gets an intent "
                "and an emotion (neutral, positive, frustrated, angry, confused), stored on the turn and filterable "
                "under Conversations. Escalating sends an upset visitor's turn to the smart policy's strong model "
                "and has the assistant offer a human.",
            },
        ),
    )

    def get_urls(self) -> list[URLPattern]:
        sample = path(
            "voice-sample/",
            self.admin_site.admin_view(self.voice_sample_view),
            name="voice_assistant_voice_sample",
        )
        return [sample, *super().get_urls()]

    def voice_sample_view(self, request: HttpRequest) -> HttpResponse:
        """A sentence spoken by the provider, model and voice the form shows (not yet saved), as WAV."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        sample = voice_sample(
            provider=request.GET.get("provider", ""),
            model=request.GET.get("model", ""),
            voice=request.GET.get("voice", ""),
            speed=request.GET.get("speed", "1"),
            base_url=request.GET.get("base_url", ""),
        )
        if isinstance(sample, str):
            return HttpResponse(sample, status=400, content_type="text/plain; charset=utf-8")
        response = HttpResponse(sample, content_type="audio/wav")
        response["Cache-Control"] = "no-store"
        return response

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "aura_offerings": assistant_offerings()}
        if object_id and (assistant := self.get_object(request, object_id)) is not None:
            extra |= {"aura_try_it": self.try_it(assistant), "aura_try_it_title": "Try it"}
        return allow_widget(super().changeform_view(request, object_id, form_url, extra), sample=True)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Assistant | None = None,
    ) -> HttpResponse:
        if request.method == "GET" and obj is not None and (problem := speech_detector_problem(obj.speech_detector)):
            messages.warning(request, problem)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Sample")
    def voice_sample(self, obj: Assistant) -> str:
        return format_html(
            '<button type="button" class="button aura-voice-sample" data-url="{}">▶ Play a sample</button> '
            '<span class="aura-voice-sample-status" role="status"></span>',
            reverse("tenant_admin:voice_assistant_voice_sample"),
        )

    def try_it(self, obj: Assistant) -> str:
        """The widget itself, talking to this assistant through one of its active widget keys."""
        if not obj.pk:
            return "Save the assistant to try it here."
        key = assistant_widget_key(obj.pk)
        if key is None:
            return format_html(
                'No active widget key talks to this assistant yet: <a href="{}">add a widget key</a> for it, '
                "then try it here.",
                reverse("tenant_admin:tenants_widgetkey_add"),
            )
        return format_html(
            "<p>The real widget, as visitors will have it, talking to this assistant (saved settings) through the "
            'widget key <a href="{}">{}</a>. Conversations started here are listed under Conversations.</p>{}',
            reverse("tenant_admin:tenants_widgetkey_change", args=[key.pk]),
            key.name,
            widget_preview(key),
        )

    @admin.display(description="Speech detector in use")
    def speech_detector_status(self, obj: Assistant) -> str:
        detector = obj.speech_detector if obj.pk else SpeechDetector.WEBRTCVAD
        problem = speech_detector_problem(detector)
        if problem:
            return format_html('<strong style="color: #ba2121">{}</strong>', problem)
        return SpeechDetector(detector).label

    @admin.display(description="HTTP tools")
    def http_tools_in_use(self, obj: Assistant) -> str:
        if not obj.pk:
            return "—"
        tools = list(obj.http_tools.all())
        if not tools:
            return format_html(
                'None yet: <a href="{}">add an HTTP tool</a>.', reverse("tenant_admin:voice_httptool_add")
            )
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>{}',
            (
                (reverse("tenant_admin:voice_httptool_change", args=[t.pk]), t.name, "" if t.is_active else " (off)")
                for t in tools
            ),
        )

    @admin.display(description="Knowledge documents")
    def knowledge_in_use(self, obj: Assistant) -> str:
        from knowledge.models import Document

        if not obj.pk:
            return "—"
        documents = Document.objects.filter(Q(assistants=obj) | Q(assistants__isnull=True)).distinct()
        if not documents:
            return format_html('None: <a href="{}">add a document</a>.', reverse("tenant_admin:knowledge_document_add"))
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> ({})',
            (
                (reverse("tenant_admin:knowledge_document_change", args=[d.pk]), d.title, d.get_status_display())
                for d in documents
            ),
        )

    @admin.display(description="How this assistant routes")
    def routing_rules(self, obj: Assistant) -> str:
        """The rules in words, from the same code that applies them."""
        if not obj.pk:
            return "Save the assistant to see its routing rules."
        config = routing_config_without_keys(obj)
        lines = describe_routing(config)
        return format_html_join("", "<p>{}</p>", ((line,) for line in lines))


@admin.register(HttpTool, site=tenant_admin)
class HttpToolAdmin(admin.ModelAdmin):
    """Tenant-defined tools: the model fills in the parameters, the platform calls the URL, signed."""

    form = HttpToolForm
    list_display = ("name", "method", "url", "is_active", "used_by")
    list_filter = ("is_active", "method")
    search_fields = ("name", "description", "url")
    readonly_fields = ("signing_secret",)

    @admin.display(description="Assistants")
    def used_by(self, obj: HttpTool) -> str:
        return ", ".join(assistant.name for assistant in obj.assistants.all()) or "—"

    def save_model(self, request: HttpRequest, obj: HttpTool, form: HttpToolForm, change: bool) -> None:
        stored = HttpTool.objects.filter(pk=obj.pk).values_list("headers", flat=True).first() if obj.pk else None
        had_headers = bool(stored)
        # The form shows the stored headers: "set again" means changed, or the box that says to keep them ticked.
        headers_set = obj.headers != (stored or {}) or bool(form.cleaned_data.get("keep_headers"))
        do_save_http_tool(obj, headers_set=headers_set)
        if change and had_headers and not obj.headers and not headers_set:
            messages.warning(
                request,
                "The URL now points at another scheme, host or port, so the stored headers were removed: they "
                "were written for the old address. Enter them again if the new address should receive them.",
            )

    def get_fieldsets(self, request: HttpRequest, obj: HttpTool | None = None) -> list[tuple[str | None, dict]]:
        main = ("name", "description", "parameters", "assistants", "is_active")
        call = (
            "url",
            "method",
            "headers",
            *(("keep_headers",) if obj else ()),
            "timeout_ms",
            *(("signing_secret",) if obj else ()),
        )
        return [
            (None, {"fields": main}),
            (
                "The call",
                {
                    "fields": call,
                    "description": "GET sends the arguments as query parameters; other methods send "
                    '{"arguments": …, "conversation_id": …, "visitor_id": …} as JSON. Every request carries '
                    "AURA-Signature (see the signing secret). Private, loopback and link-local addresses are refused, "
                    "redirects are not followed, and at most 4,000 characters of the answer reach the model.",
                },
            ),
        ]


@admin.register(ProviderKey, site=tenant_admin)
class ProviderKeyAdmin(admin.ModelAdmin):
    """The organization's own provider keys: used instead of the platform's, shown only masked."""

    form = ProviderKeyForm
    list_display = ("provider", "key_hint", "updated_at")
    readonly_fields = ("key_hint", "created_at", "updated_at")

    def get_fields(self, request: HttpRequest, obj: ProviderKey | None = None) -> list[str]:
        return ["provider", "api_key", "key_hint", "updated_at"] if obj else ["provider", "api_key"]


@admin.register(WidgetKey, site=tenant_admin)
class WidgetKeyAdmin(admin.ModelAdmin):
    """A tenant's widget keys: which assistant, which sites, and the tag to paste."""

    form = WidgetKeyForm
    list_display = ("name", "key", "is_active", "origins_list", "created_at")
    readonly_fields = ("key", "embed_snippet", "identity_verification")
    change_form_template = "admin/aura_change_form.html"  # the live preview after the form
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
        "identity_verification",
    )
    actions = ["rotate_identity_secret"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WidgetKey]:
        return super().get_queryset(request).filter(organization=request.tenant)

    def save_model(self, request: HttpRequest, obj: WidgetKey, form: object, change: bool) -> None:
        obj.organization = request.tenant
        super().save_model(request, obj, form, change)
        _, ratio = text_on(obj.accent_color)
        if ratio < MIN_TEXT_CONTRAST:
            messages.warning(
                request,
                f"Text on the accent colour {obj.accent_color} reads at only {ratio:.1f}:1 (white or dark, whichever "
                f"is better; {MIN_TEXT_CONTRAST}:1 is the minimum for readable text). Pick a lighter or darker colour.",
            )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WidgetKey]) -> None:
        for key in queryset:  # one by one, so each key leaves the lookup cache
            key.delete()

    def response_add(self, request: HttpRequest, obj: WidgetKey, post_url_continue: str | None = None) -> HttpResponse:
        """A new key's identity secret, shown this once (on the page, never stored in a message cookie)."""
        return self._show_identity_secrets(request, [(obj, do_rotate_widget_identity_secret(obj))])

    @admin.action(description="Rotate the identity secret (shown once)")
    def rotate_identity_secret(self, request: HttpRequest, queryset: QuerySet[WidgetKey]) -> HttpResponse:
        return self._show_identity_secrets(request, [(key, do_rotate_widget_identity_secret(key)) for key in queryset])

    def _show_identity_secrets(self, request: HttpRequest, secrets: list[tuple[WidgetKey, str]]) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Identity secret",
            "secrets": secrets,
            "changelist_url": reverse("tenant_admin:tenants_widgetkey_changelist"),
        }
        response = TemplateResponse(request, "admin/voice/identity_secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.display(description="Identity verification")
    def identity_verification(self, obj: WidgetKey) -> str:
        if not obj.pk:
            return "A secret is made when the key is saved, and shown once."
        return format_html(
            "Identity secret: <code>{}</code> (shown in full only when made; “Rotate the identity secret” in the "
            "list makes a new one). Your server signs a signed-in user's id with it, so the assistant "
            "remembers the person: docs/widget.md, “Signed-in users”.",
            obj.identity_secret_hint or "none yet: rotate to make one",
        )

    @admin.display(description="Allowed origins")
    def origins_list(self, obj: WidgetKey) -> str:
        return ", ".join(obj.allowed_origins) or "— none: add your site —"

    @admin.display(description="Embed on your site")
    def embed_snippet(self, obj: WidgetKey) -> str:
        if not obj.pk:
            return "Save the key to get its snippet."
        return embed_snippet(obj)

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        if object_id and (key := self.get_object(request, object_id)) is not None:
            extra |= {"aura_try_it": self.live_preview(key), "aura_try_it_title": "Live preview"}
        return allow_widget(super().changeform_view(request, object_id, form_url, extra))

    def live_preview(self, obj: WidgetKey) -> str:
        """The real widget on this page: it works here when this admin's own origin is allowed."""
        if not obj.pk:
            return "Save the key to try it here."
        return format_html(
            "<p>The real widget, talking to this key's assistant, as it will look. It works on this page "
            "whatever the allowed origins: your organization's own address may always use its keys.</p>{}",
            widget_preview(obj),
        )


def widget_script_url() -> str:
    return settings.AURA_PLATFORM_URL + static("aura/widget.js")  # the widget talks to the platform host


def allow_widget(response: HttpResponse, *, sample: bool = False) -> HttpResponse:
    """Let this admin page (on the organization's host) run the widget, which comes from and talks to the
    platform's host (script, POST /widget/session, its WebSocket), and play a voice sample (a blob: URL):
    additions to the Content-Security-Policy for this response only (django-csp reads ``_csp_update``)."""
    platform = urlsplit(settings.AURA_PLATFORM_URL)
    origin = f"{platform.scheme}://{platform.netloc}"
    socket = f"{'wss' if platform.scheme == 'https' else 'ws'}://{platform.netloc}"
    update = {"script-src": [origin], "connect-src": [origin, socket]}
    if sample:
        update["media-src"] = ["blob:"]
    response._csp_update = update  # type: ignore[attr-defined]  # noqa: SLF001 - django-csp's per-response hook
    return response


def embed_snippet(key: WidgetKey) -> str:
    """The tag to paste, whole (never wrapped inside an attribute), with a button that copies it."""
    return format_html(
        '<div class="aura-snippet"><code id="aura-embed-{}">{}</code>'
        '<button type="button" class="button aura-copy" data-copy="aura-embed-{}">Copy</button>'
        '<span class="aura-copy-status" role="status"></span></div>',
        key.pk,
        embed_tag(key, widget_script_url()),
        key.pk,
    )


def widget_preview(key: WidgetKey) -> str:
    """The real widget, inline on an admin page (the organization's own host may always use its keys)."""
    return format_html(
        '<aura-voice-widget key="{}" placement="inline"{} accent="{}"></aura-voice-widget>'
        '<script src="{}" async></script>',
        key.key,
        format_html(' title="{}"', key.title) if key.title else "",  # empty: the assistant's name, as on a site
        key.accent_color,
        widget_script_url(),
    )


def provider_health_page(request: HttpRequest) -> HttpResponse:
    """Platform staff: every provider's breaker and speed, with a reset per row."""
    if request.method == "POST" and (key := request.POST.get("reset")):
        reset_shared_health(key)
        messages.success(request, f"The breaker of {key} is reset to closed.")
        return redirect(request.path)
    rows, error, now = [], "", time.time()
    try:
        board = shared_health()
    except RedisError as exc:
        board, error = {}, f"The shared health store (Redis) is unavailable: {exc}"
    for key, health in sorted(board.items()):
        rows.append(
            {
                "key": key,
                "state": health.effective_state(now).replace("_", "-"),
                "failures": health.failures,
                "opened_until": _when(health.opened_until) if health.state == "open" else "",
                "first_token_ms": health.first_token_ms,
                "last_error": health.last_error,
                "updated_at": _when(health.updated_at),
            }
        )
    context = {
        **platform_admin.each_context(request),
        "title": "Provider health",
        "rows": rows,
        "error": error,
        "failures_to_open": settings.AURA_BREAKER_FAILURES,
        "cooldown_s": settings.AURA_BREAKER_COOLDOWN_S,
    }
    return TemplateResponse(request, "admin/voice/provider_health.html", context)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if timestamp else ""


platform_admin.add_page(StaffPage("provider-health/", "provider_health", "Provider health", provider_health_page))
