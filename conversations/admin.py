"""Tenant admins browse conversations (filters, a transcript with timings and tool calls, export),
leads, hand-offs and what is remembered about visitors."""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from conversations import exports
from conversations.actions import do_delete_conversations
from conversations.models import (
    EMOTION_CHOICES,
    Conversation,
    Delivery,
    Handoff,
    Lead,
    Role,
    ToolCall,
    Turn,
    VisitorProfile,
)
from conversations.queries import emotion_summary, intents_seen, with_emotion, with_feeling, with_intent
from conversations.visitors import forget_visitor_everywhere
from core.admin_sites import tenant_admin


class InterruptedFilter(admin.SimpleListFilter):
    title = "interrupted"
    parameter_name = "interrupted"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "With an interruption"), ("no", "Without")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        interrupted = Exists(Turn.objects.filter(conversation=OuterRef("pk"), interrupted=True))
        if self.value() == "yes":
            return queryset.filter(interrupted)
        if self.value() == "no":
            return queryset.exclude(interrupted)
        return queryset


class ToolUsedFilter(admin.SimpleListFilter):
    title = "tool used"
    parameter_name = "tool"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        names = ToolCall.objects.order_by("name").values_list("name", flat=True).distinct()
        return [("any", "Any tool"), *((name, name) for name in names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        if self.value() == "any":
            return queryset.filter(Exists(ToolCall.objects.filter(conversation=OuterRef("pk"))))
        if self.value():
            return queryset.filter(Exists(ToolCall.objects.filter(conversation=OuterRef("pk"), name=self.value())))
        return queryset


class EmotionFilter(admin.SimpleListFilter):
    title = "visitor emotion"
    parameter_name = "emotion"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("upset", "Frustrated or angry"), *EMOTION_CHOICES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        if self.value() == "upset":
            return queryset.filter(upset_turns__gt=0)
        if self.value():
            return with_emotion(queryset, self.value())
        return queryset


class IntentFilter(admin.SimpleListFilter):
    title = "visitor intent"
    parameter_name = "intent"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in intents_seen()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        return with_intent(queryset, self.value()) if self.value() else queryset


def _stream(chunks: Iterator[str], content_type: str, extension: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="conversations-{stamp}.{extension}"'
    return response


@admin.register(Conversation, site=tenant_admin)
class ConversationAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "assistant",
        "channel",
        "visitor",
        "state",
        "turn_count",
        "tools_used",
        "feeling",
    )
    list_filter = (
        "status",
        EmotionFilter,
        IntentFilter,
        InterruptedFilter,
        ToolUsedFilter,
        "channel",
        "end_reason",
        "assistant",
        "started_at",
    )
    search_fields = ("=visitor_id", "=call_sid", "turns__text")
    date_hierarchy = "started_at"
    actions = ["export_json", "export_csv", "delete_with_turns"]
    fields = (
        "id",
        "assistant",
        "visitor_id",
        "channel",
        "origin",
        "caller_number",
        "call_sid",
        "status",
        "end_reason",
        "started_at",
        "ended_at",
        "summary",
        "emotions",
        "transcript",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return with_feeling(
            super().get_queryset(request).select_related("assistant").annotate(turn_total=Count("turns"))
        )

    @admin.display(description="Visitor's mood")
    def feeling(self, obj: Conversation) -> str:
        """The last emotion heard, and how many turns sounded frustrated or angry."""
        last = obj.last_emotion or "—"  # type: ignore[attr-defined]
        upset = obj.upset_turns  # type: ignore[attr-defined]
        return f"{last} ({upset} upset)" if upset else last

    @admin.display(description="Emotions")
    def emotions(self, obj: Conversation) -> str:
        summary = emotion_summary(obj.turns.all())
        counts = summary["counts"]
        if not counts:
            return "—"
        shown = ", ".join(f"{label} {n}" for label, n in sorted(counts.items(), key=lambda item: -item[1]))
        return f"Mostly {summary['dominant']}, last {summary['last']} ({shown})"

    def get_urls(self) -> list[URLPattern]:
        audio = path(
            "turn-audio/<int:turn_id>/", self.admin_site.admin_view(self.turn_audio), name="conversations_turn_audio"
        )
        return [audio, *super().get_urls()]

    def turn_audio(self, request: HttpRequest, turn_id: int) -> FileResponse:
        """A recorded utterance, to the organization's admins only (recordings are never served publicly)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        turn = get_object_or_404(Turn.objects.exclude(audio=""), pk=turn_id)
        return FileResponse(turn.audio.open("rb"), content_type="audio/wav", filename=f"turn-{turn.pk}.wav")

    def get_actions(self, request: HttpRequest) -> dict[str, object]:
        found = super().get_actions(request)
        found.pop("delete_selected", None)  # deleting goes through delete_with_turns (recordings too)
        return found

    @admin.display(description="Turns", ordering="turn_total")
    def turn_count(self, obj: Conversation) -> int:
        return obj.turn_total  # type: ignore[attr-defined]

    @admin.display(description="Visitor", ordering="visitor_id")
    def visitor(self, obj: Conversation) -> str:
        """Long visitor ids are cut short in the list (the full id on hover), so the columns after stay on screen."""
        return format_html('<span class="aura-truncate" title="{}">{}</span>', obj.visitor_id, obj.visitor_id)

    @admin.display(description="Status", ordering="status")
    def state(self, obj: Conversation) -> str:
        """Status and why it ended, in one column (the list stays narrow enough to show every column)."""
        if obj.end_reason:
            return format_html("{}<br><small>{}</small>", obj.get_status_display(), obj.get_end_reason_display())
        return obj.get_status_display()

    @admin.display(description="Tools")
    def tools_used(self, obj: Conversation) -> str:
        return ", ".join(sorted(set(obj.tool_calls.values_list("name", flat=True)))) or "—"

    @admin.display(description="Transcript")
    def transcript(self, obj: Conversation) -> SafeString:
        """Each turn as it happened: who, what was heard, timings, provider, and the tools it called."""
        calls: dict[int | None, list[ToolCall]] = {}
        for call in obj.tool_calls.all():
            calls.setdefault(call.turn_id, []).append(call)
        rows = []
        for turn in obj.turns.all():
            rows.append(
                format_html(
                    '<tr><td>{}</td><td><strong>{}</strong>{}</td><td>{}{}{}</td><td class="aura-nowrap">{}</td>'
                    "<td>{}</td></tr>",
                    turn.index,
                    turn.get_role_display(),
                    format_html("<br><small>{}</small>", turn.input_mode) if turn.input_mode else "",
                    _said(turn),
                    _understood(turn),
                    _tool_list(calls.get(turn.pk, [])),
                    _timings(turn),
                    f"{turn.provider}:{turn.model}" if turn.provider else "—",
                )
            )
        if not rows:
            return format_html("<p>{}</p>", "No turns yet.")
        head = "<tr><th>#</th><th>Who</th><th>Said (heard)</th><th>Timings</th><th>Model</th></tr>"
        return format_html('<table class="aura-transcript">{}{}</table>', SafeString(head), SafeString("".join(rows)))

    @admin.action(description="Export selected conversations as JSON")
    def export_json(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> StreamingHttpResponse:
        return _stream(exports.json_chunks(exports.for_export(queryset)), "application/json", "json")

    @admin.action(description="Export selected conversations as CSV (one row per turn)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> StreamingHttpResponse:
        return _stream(exports.csv_lines(exports.for_export(queryset)), "text/csv; charset=utf-8", "csv")

    @admin.action(description="Delete selected conversations with their turns and recordings")
    def delete_with_turns(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        deleted = do_delete_conversations(queryset)
        self.message_user(request, f"Deleted {deleted} conversation(s).", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: VisitorProfile) -> None:
        forget_visitor_everywhere(visitor_id=obj.visitor_id)  # recordings and phone calls too, not just the row

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[VisitorProfile]) -> None:
        for visitor_id in queryset.values_list("visitor_id", flat=True):
            forget_visitor_everywhere(visitor_id=visitor_id)

    def has_change_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


def _said(turn: Turn) -> SafeString:
    if turn.role == Role.ASSISTANT and turn.delivery == Delivery.REPLY_FAILED:
        return format_html(
            "{}<br><small>Reply failed: the language model did not answer{}</small>",
            turn.heard_text or turn.text or "—",
            " in full" if turn.text else "",
        )
    if turn.role == Role.ASSISTANT and turn.delivery == Delivery.SPEECH_FAILED:
        heard = "" if turn.heard_text == turn.text else format_html(" (heard: {})", turn.heard_text or "nothing")
        return format_html("{}<br><small>Speech failed: sent as text only{}</small>", turn.text, heard)
    if turn.role == Role.ASSISTANT and (turn.interrupted or turn.delivery == Delivery.UNHEARD):
        if not turn.heard_text:
            return format_html("(nothing heard)<br><small>Not heard. Generated: <s>{}</s></small>", turn.text)
        return format_html("{}<br><small>Interrupted. Generated: <s>{}</s></small>", turn.heard_text, turn.text)
    audio = (
        format_html(' <a href="{}">audio</a>', reverse("tenant_admin:conversations_turn_audio", args=[turn.pk]))
        if turn.audio
        else ""
    )
    return format_html("{}{}", turn.heard_text or turn.text, audio)


def _understood(turn: Turn) -> SafeString:
    if turn.role != Role.VISITOR or not (turn.emotion or turn.intent):
        return SafeString("")
    return format_html(
        "<br><small>{} · intent {} · by {}</small>", turn.emotion or "—", turn.intent or "—", turn.understood_by or "—"
    )


def _tool_list(calls: list[ToolCall]) -> SafeString:
    if not calls:
        return SafeString("")
    items = format_html_join(
        "",
        "<li><code>{}({})</code> → {} <small>{} ms</small><br><small>{}</small></li>",
        ((call.name, call.arguments, call.status, round(call.duration_ms or 0), call.result[:300]) for call in calls),
    )
    return format_html('<ul style="margin:.4em 0 0 1em">{}</ul>', items)


def _timings(turn: Turn) -> str:
    parts = [
        ("end of speech", turn.endpoint_delay_ms),
        ("speech-to-text", turn.stt_ms),
        ("first token", turn.llm_first_token_ms),
        ("speech first byte", turn.tts_first_byte_ms),
        ("first audio", turn.first_audio_ms),
        ("total", turn.total_ms),
    ]
    return " · ".join(f"{name} {value:.0f} ms" for name, value in parts if value is not None) or "—"


@admin.register(Lead, site=tenant_admin)
class LeadAdmin(admin.ModelAdmin):
    list_display = ("created_at", "name", "email", "phone", "note_start", "conversation")
    search_fields = ("name", "email", "phone", "note")
    date_hierarchy = "created_at"
    readonly_fields = ("conversation", "visitor_id", "created_at")

    @admin.display(description="Note")
    def note_start(self, obj: Lead) -> str:
        return obj.note[:80]


@admin.register(Handoff, site=tenant_admin)
class HandoffAdmin(admin.ModelAdmin):
    list_display = ("created_at", "state", "reason_start", "contact", "conversation")
    list_filter = ("state",)
    date_hierarchy = "created_at"
    fields = ("state", "reason", "contact", "conversation", "created_at", "transcript")
    readonly_fields = ("reason", "contact", "conversation", "created_at", "transcript")
    actions = ["mark_done"]

    @admin.display(description="Reason")
    def reason_start(self, obj: Handoff) -> str:
        return obj.reason[:80]

    @admin.action(description="Mark selected hand-offs as done")
    def mark_done(self, request: HttpRequest, queryset: QuerySet[Handoff]) -> None:
        updated = queryset.update(state=Handoff.State.DONE)
        self.message_user(request, f"{updated} hand-off(s) marked done.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(VisitorProfile, site=tenant_admin)
class VisitorProfileAdmin(admin.ModelAdmin):
    """What assistants remember. Deleting a profile forgets the visitor (they can also ask the assistant)."""

    list_display = ("visitor_id", "name", "conversations", "updated_at")
    search_fields = ("=visitor_id", "name")
    readonly_fields = ("visitor_id", "conversations", "last_conversation", "updated_at")
    fields = ("visitor_id", "name", "preferences", "open_requests", "conversations", "last_conversation", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
