"""Tenant admins manage the documents their assistants answer from, and try questions against them."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from core.admin_sites import tenant_admin
from knowledge.actions import do_add_document, do_delete_document, do_reindex_document, do_update_document
from knowledge.forms import DocumentAddForm, DocumentChangeForm, TryQuestionForm
from knowledge.models import Document, Status
from knowledge.queries import format_hits_for_model, search_passages

_INDEXING_FIELDS = (
    "status_label",
    "kind",
    "original_name",
    "passage_count",
    "characters",
    "indexed_at",
    "created_at",
    "updated_at",
)


@admin.register(Document, site=tenant_admin)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "kind", "status_label", "passage_count", "characters", "assistants_label", "updated_at")
    list_filter = ("status", "kind")
    search_fields = ("title",)
    actions = ("reindex_selected",)
    change_form_template = "admin/knowledge/document/change_form.html"
    change_list_template = "admin/knowledge/document/change_list.html"

    def get_form(self, request: HttpRequest, obj: Document | None = None, **kwargs: object) -> type[ModelForm]:
        kwargs["form"] = DocumentChangeForm if obj else DocumentAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Document | None = None) -> list[tuple[str | None, dict]]:
        if obj is None:
            return [(None, {"fields": ("title", "file", "text", "language", "assistants")})]
        return [
            (None, {"fields": ("title", "language", "assistants")}),
            ("Indexing", {"fields": _INDEXING_FIELDS}),
            ("Passages", {"fields": ("passages_table",), "description": "What the assistant can find, in order."}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Document | None = None) -> tuple[str, ...]:
        return (*_INDEXING_FIELDS, "passages_table") if obj else ()

    # --- Writes go through knowledge.actions ------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Document, form: ModelForm, change: bool) -> None:
        assistant_ids = [assistant.pk for assistant in form.cleaned_data.get("assistants", [])]
        if change:
            do_update_document(
                document=obj, title=obj.title, language=form.cleaned_data["language"], assistant_ids=assistant_ids
            )
            return
        created = do_add_document(
            title=form.cleaned_data.get("title") or "",
            file=form.cleaned_data.get("file") or None,
            text=form.cleaned_data.get("text") or "",
            language=form.cleaned_data.get("language") or "en",
            assistant_ids=assistant_ids,
        )
        obj.pk = created.pk
        obj.refresh_from_db()
        _report_status(request, obj)

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: list, change: bool) -> None:
        """The actions set the assistants; there are no inlines."""

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        do_delete_document(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            do_delete_document(document=document)

    @admin.action(description="Re-index the selected documents", permissions=["change"])
    def reindex_selected(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            do_reindex_document(document=document)
        self.message_user(request, f"Re-indexing {queryset.count()} document(s).", messages.INFO)

    # --- Pages: re-index one document, try a question ------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        return [
            path("try/", self.admin_site.admin_view(self.try_question_view), name="knowledge_document_try"),
            path(
                "<int:object_id>/reindex/",
                self.admin_site.admin_view(self.reindex_view),
                name="knowledge_document_reindex",
            ),
            *super().get_urls(),
        ]

    def reindex_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        document = get_object_or_404(Document, pk=object_id)
        if not self.has_change_permission(request, document):
            return HttpResponse(status=403)
        do_reindex_document(document=document)
        _report_status(request, document)
        return HttpResponseRedirect(reverse("tenant_admin:knowledge_document_change", args=[document.pk]))

    def try_question_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        form = TryQuestionForm(request.GET or None)
        hits, tool_text = None, ""
        if form.is_valid():
            hits = search_passages(form.cleaned_data["question"], assistant_id=form.cleaned_data["assistant"].pk)
            tool_text = format_hits_for_model(hits)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Try a question",
            "form": form,
            "hits": hits,
            "tool_text": tool_text,
            "ready_documents": Document.objects.filter(status=Status.READY).count(),
        }
        return TemplateResponse(request, "admin/knowledge/document/try_question.html", context)

    # --- Display ------------------------------------------------------------------------------

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj: Document) -> str:
        if obj.status == Status.FAILED:
            return format_html('<strong style="color: #ba2121">Failed</strong>: {}', obj.error)
        if obj.status == Status.PROCESSING:
            return format_html("<em>{}</em>", "Processing…")
        return format_html('<span style="color: #2e7d32">{}</span>', "Ready")

    @admin.display(description="Assistants")
    def assistants_label(self, obj: Document) -> str:
        names = [assistant.name for assistant in obj.assistants.all()]
        return ", ".join(names) if names else "Every assistant"

    @admin.display(description="Passages")
    def passages_table(self, obj: Document) -> str:
        passages = obj.passages.order_by("index").values_list("index", "heading", "words", "text")
        if not passages:
            return "No passages." if obj.status != Status.PROCESSING else "Indexing; reload the page in a moment."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((index + 1, heading or "—", words, text) for index, heading, words, text in passages),
        )
        return format_html(
            '<table id="passages"><thead><tr><th>#</th><th>Heading</th><th>Words</th><th>Text</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            rows,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return super().get_queryset(request).prefetch_related("assistants")


def _report_status(request: HttpRequest, document: Document) -> None:
    if document.status == Status.FAILED:
        messages.error(request, f"“{document.title}” could not be indexed: {document.error}")
    elif document.status == Status.PROCESSING:
        messages.info(request, f"“{document.title}” is being indexed in the background; reload to see its status.")
    else:
        messages.success(request, f"“{document.title}” is ready: {document.passage_count} passages.")
