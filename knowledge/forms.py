"""Tenant admin forms for knowledge documents."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from knowledge.extraction import ACCEPTED, ExtractionError, check_upload
from knowledge.models import Document
from knowledge.queries import assistants

_ASSISTANTS_HELP = "The assistants that may answer from this document. Choose none: every assistant may."
_LANGUAGE_HELP = 'Language code of the text, e.g. "en", "fr", "de" (it decides word stemming in search).'


class DocumentAddForm(forms.ModelForm):
    """Upload a file or paste text; the checks that need no parsing happen here, so nothing bad is stored."""

    class Meta:
        model = Document
        fields = ["title", "file", "text", "language", "assistants"]
        labels = {"file": "Upload a file", "text": "…or paste text"}
        help_texts = {
            "title": "Leave empty to use the file's name, the page title or the first line of the text.",
            "file": f"{ACCEPTED}.",
            "text": "Markdown headings (# Heading) are kept as context for the passages under them.",
            "language": _LANGUAGE_HELP,
            "assistants": _ASSISTANTS_HELP,
        }
        widgets = {"text": forms.Textarea(attrs={"rows": 12, "cols": 80})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["file"].widget = forms.FileInput(attrs={"accept": ".md,.markdown,.txt,.html,.htm,.pdf"})
        if "assistants" in self.fields:
            self.fields["assistants"].queryset = assistants().order_by("name")

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        upload, text = cleaned.get("file"), (cleaned.get("text") or "").strip()
        if bool(upload) == bool(text):
            raise ValidationError("Upload a file or paste text (one of the two).")
        if upload:
            head = upload.read(1024)
            upload.seek(0)
            try:
                check_upload(upload.name, upload.size, head)
            except ExtractionError as exc:
                self.add_error("file", str(exc))
        return cleaned


class DocumentChangeForm(forms.ModelForm):
    class Meta:
        model = Document
        fields = ["title", "language", "assistants"]
        help_texts = {"language": _LANGUAGE_HELP + " Changing it re-indexes.", "assistants": _ASSISTANTS_HELP}


class TryQuestionForm(forms.Form):
    question = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 80, "autofocus": True}))
    assistant = forms.ModelChoiceField(queryset=None, empty_label=None)  # the assistants, set below

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assistant"].queryset = assistants().order_by("-is_default", "name")
