"""Tenant admin forms for widget keys (the keys live in the public schema, their assistants here)."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from tenants.models import WidgetKey, clean_origin
from voice.actions import seal_provider_key
from voice.models import HEADERS_STAY_WITH_THE_URL, Assistant, BuiltinTool, HttpTool, ProviderKey


def _clean_origin(value: str) -> str:
    return clean_origin(value)


class WidgetKeyForm(forms.ModelForm):
    assistant = forms.ModelChoiceField(queryset=Assistant.objects.none(), help_text="The assistant visitors talk to.")
    origins = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Allowed origins",
        help_text="One per line: https://shop.example, or https://*.shop.example for every subdomain.",
    )

    class Meta:
        model = WidgetKey
        fields = ["name", "is_active", "title", "accent_color", "placement"]
        widgets = {"accent_color": forms.TextInput(attrs={"type": "color"})}
        help_texts = {
            "title": "Shown in the widget's header. Empty: the assistant's name.",
            "accent_color": "The launcher and header colour. Text on it is white or dark, whichever reads better; "
            "you are warned when neither reaches 4.5:1.",
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assistant"].queryset = Assistant.objects.all()
        if self.instance.pk:
            self.fields["assistant"].initial = self.instance.assistant_id
            self.fields["origins"].initial = "\n".join(self.instance.allowed_origins)

    def clean_origins(self) -> list[str]:
        lines = [line for line in self.cleaned_data.get("origins", "").splitlines() if line.strip()]
        return sorted({_clean_origin(line) for line in lines})

    def save(self, commit: bool = True) -> WidgetKey:
        key = super().save(commit=False)
        key.assistant_id = self.cleaned_data["assistant"].pk
        key.allowed_origins = self.cleaned_data["origins"]
        if commit:
            key.save()
        return key


class ProviderKeyForm(forms.ModelForm):
    """A provider key is written, never read back: the field starts empty and shows only the hint."""

    api_key = forms.CharField(
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted. It is shown masked from now on; to change it, enter a new one.",
    )

    class Meta:
        model = ProviderKey
        fields = ["provider"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["api_key"].required = False
            self.fields["api_key"].help_text = format_html(
                "Current key: {}. Leave empty to keep it.", self.instance.key_hint
            )

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        moved = self.instance.pk and "provider" in self.changed_data
        if moved and not cleaned.get("api_key", "").strip():
            # A key belongs to its provider: never carry an OpenAI secret over to xAI.
            self.add_error("api_key", "Enter the key for the new provider.")
        return cleaned

    def save(self, commit: bool = True) -> ProviderKey:
        key = super().save(commit=False)
        if secret := self.cleaned_data.get("api_key", "").strip():
            seal_provider_key(key, secret)
        if commit:
            key.save()
        return key


class IntentsField(forms.CharField):
    """The assistant's intents as lines of text: ``book_table: book a table | a reservation for tonight``."""

    widget = forms.Textarea(attrs={"rows": 6, "style": "font-family: monospace"})

    def prepare_value(self, value: object) -> object:
        if isinstance(value, list):
            return "\n".join(f"{i['name']}: {' | '.join(i['examples'])}" for i in value if isinstance(i, dict))
        return value

    def to_python(self, value: object) -> list[object]:
        text = super().to_python(value)
        if text.strip().startswith("["):  # pasted as JSON, as the API takes it: the model's validator checks it
            try:
                parsed = json.loads(text)
            except ValueError:
                raise ValidationError("This looks like JSON but is not valid JSON.") from None
            if not isinstance(parsed, list):
                raise ValidationError("Enter one intent a line, or a JSON list.")
            return parsed
        intents: list[object] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, examples = line.partition(":")
            if not colon:
                raise ValidationError(f"Line {number}: write “name: example one | example two”.")
            intents.append({"name": name.strip(), "examples": [e.strip() for e in examples.split("|") if e.strip()]})
        return intents


class AssistantForm(forms.ModelForm):
    """Built-in tools as checkboxes rather than a JSON list; intents as lines of text."""

    tools = forms.MultipleChoiceField(
        choices=BuiltinTool.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="What this assistant may do during a conversation. Visitors can always ask to be forgotten "
        "when remembering visitors is on.",
    )
    intents = IntentsField(
        required=False,
        help_text="One intent a line: a name, a colon, example phrases separated by “|”, e.g. "
        "“book_table: book a table | a reservation for tonight”. The built-in tools are intents already.",
    )

    class Meta:
        model = Assistant
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets choose what is shown


class HttpToolForm(forms.ModelForm):
    keep_headers = forms.BooleanField(
        required=False,
        label="Send the stored headers to the new address",
        help_text="Only matters when the URL's scheme, host or port changes: the headers (often credentials) were "
        "written for the old address and are removed, unless you tick this or enter them again.",
    )

    class Meta:
        model = HttpTool
        fields = [
            "name",
            "description",
            "parameters",
            "url",
            "method",
            "headers",
            "timeout_ms",
            "assistants",
            "is_active",
        ]
        help_texts = {"headers": "Extra headers sent with every call, one line each. " + HEADERS_STAY_WITH_THE_URL}
        widgets = {
            "parameters": forms.Textarea(attrs={"rows": 8, "style": "font-family: monospace"}),
            "headers": forms.Textarea(attrs={"rows": 3, "style": "font-family: monospace"}),
            "assistants": forms.CheckboxSelectMultiple,
        }
