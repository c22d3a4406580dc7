"""Tenant admin forms for widget keys (the keys live in the public schema, their assistants here)."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from tenants.models import WidgetKey, clean_origin
from voice.actions import seal_provider_key
from voice.models import HEADERS_STAY_WITH_THE_URL, Assistant, BuiltinTool, HttpTool, ProviderKey
from voice.offerings import (
    CAPABILITIES,
    CHAT,
    FALLBACK_FIELDS,
    OFFERING_FIELDS,
    OPEN,
    PROVIDER_FIELDS,
    PROVIDER_LABELS,
    VOICES,
    offering_errors,
    voice_choices,
)

FALLBACK_SLOTS = 3  # the router tries at most this many others after the primary


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


class OrderedChoicesWidget(forms.MultiWidget):
    """A few selects in a row: the first choice, the second, … (an order, unlike a multi-select)."""

    template_name = "django/forms/widgets/multiwidget.html"

    def __init__(self, slots: int, label: str) -> None:
        self.label = label
        super().__init__([forms.Select(attrs={"aria-label": f"{label} {n + 1}"}) for n in range(slots)])

    def decompress(self, value: object) -> list[object]:
        values = list(value) if isinstance(value, list | tuple) else []
        return (values + [""] * len(self.widgets))[: len(self.widgets)]


class OrderedChoicesField(forms.MultiValueField):
    """Fallbacks chosen in order from what the capability's providers offer: a list of "provider:model"."""

    def __init__(self, *, label: str, help_text: str = "", slots: int = FALLBACK_SLOTS) -> None:
        fields = [forms.ChoiceField(required=False) for _ in range(slots)]
        super().__init__(
            fields,
            widget=OrderedChoicesWidget(slots, label),
            require_all_fields=False,
            required=False,
            label=label,
            help_text=help_text,
        )

    def set_choices(self, choices: list[tuple[str, str]]) -> None:
        options = [("", "—"), *choices]
        for field, widget in zip(self.fields, self.widget.widgets, strict=True):
            field.choices = options
            widget.choices = options

    def compress(self, data_list: list[str]) -> list[str]:
        chosen: list[str] = []
        for value in data_list or []:
            if value and value not in chosen:  # the same model twice is one fallback
                chosen.append(value)
        return chosen


def _candidate_choices(capability: str, current: list[str] | str = ()) -> list[tuple[str, str]]:
    """Every known "provider:model" of a capability, with the stored ones kept so a form renders them."""
    known = CAPABILITIES[capability].candidates()
    extra = [value for value in ([current] if isinstance(current, str) else current) if value and value not in known]
    return [(value, _candidate_label(value)) for value in [*known, *extra]]


def _candidate_label(value: str) -> str:
    provider, _, model = value.partition(":")
    return f"{PROVIDER_LABELS.get(provider, provider)}: {model}"


def assistant_offerings() -> dict[str, object]:
    """What the page's script needs to narrow the model and voice lists to the chosen provider."""
    return {
        "models": {name: capability.models for name, capability in CAPABILITIES.items()},
        "voices": VOICES,
    }


class AssistantForm(forms.ModelForm):
    """What a business owner sets, as choices: providers per capability, their models and voices, fallbacks
    chosen in order; built-in tools as checkboxes; intents as lines of text. Anything a provider does not
    offer is refused here, whatever a client posts."""

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

    voice = forms.ChoiceField(
        choices=voice_choices(),
        help_text="How the assistant sounds. “Play a sample” speaks a sentence with the voice chosen above.",
    )
    llm_fallbacks = OrderedChoicesField(
        label="Fallback chat models",
        help_text="Tried in this order when the primary is down or slow (fallback policy), or ranked with it "
        "(cheapest and fastest policies).",
    )
    stt_fallbacks = OrderedChoicesField(
        label="Fallback speech-to-text", help_text="Tried in order when the primary speech-to-text fails."
    )
    tts_fallbacks = OrderedChoicesField(
        label="Fallback voices", help_text="Tried in order when the primary text-to-speech fails."
    )
    smart_strong_llm = forms.ChoiceField(
        required=False,
        label="Strong model (smart policy)",
        help_text="Answers the demanding turns when the router policy is “smart”.",
    )

    class Meta:
        model = Assistant
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets choose what is shown
        labels = {
            "instructions": "Instructions",
            "greeting": "Greeting",
            "is_default": "Default assistant",
            "llm_provider": "Chat provider",
            "llm_model": "Chat model",
            "stt_provider": "Speech-to-text provider",
            "stt_model": "Speech-to-text model",
            "tts_provider": "Voice provider",
            "tts_model": "Voice model",
            "speech_speed": "Speaking speed",
            "openai_compatible_base_url": "OpenAI-compatible server URL",
            "router_policy": "How to choose the chat model",
            "smart_long_words": "Long message (words)",
            "smart_many_tools": "Many tools (count)",
            "llm_first_token_timeout_ms": "Chat: give up without a first word after (ms)",
            "stt_timeout_ms": "Speech-to-text: give up without a result after (ms)",
            "tts_first_byte_timeout_ms": "Voice: give up without audio after (ms)",
            "speech_detector": "Speech detector",
            "vad_aggressiveness": "Noise filtering (webrtcvad, 0–3)",
            "speech_threshold": "Speech probability (Silero)",
            "speech_start_ms": "Speech needed to start a turn (ms)",
            "end_silence_ms": "Silence that ends a turn (ms)",
            "max_utterance_ms": "Longest turn (ms)",
            "barge_in_min_ms": "Speech needed to interrupt (ms)",
            "semantic_turn_end": "Listen for unfinished sentences",
            "preemptive_replies": "Start answering during the pause",
            "turn_min_silence_ms": "Shortest pause before answering (ms)",
            "turn_max_silence_ms": "Longest wait for an unfinished sentence (ms)",
            "idle_timeout_s": "End a silent conversation after (s)",
            "max_session_s": "Longest conversation (s)",
            "remember_visitors": "Remember returning visitors",
            "recent_turns": "Turns remembered word for word",
            "understand_with_model": "Ask the chat model when unsure",
            "escalate_upset_visitors": "Escalate upset visitors",
            "voice_follows_emotion": "Voice follows the visitor's mood",
        }
        help_texts = {
            "name": "What visitors see in the widget's header (unless the widget key sets a title).",
            "instructions": "Who the assistant is and how it answers: your business, its tone, what it must "
            "never say. The model reads this before every reply.",
            "greeting": "The first thing the assistant says when a visitor opens the widget.",
            "language": "The visitors' language, as a code such as en, fr or de.",
            "llm_model": "Choose from the list; for an OpenAI-compatible server, the model name it serves.",
            "stt_model": "Choose from the list; for an OpenAI-compatible server, the model name it serves.",
            "tts_model": "Choose from the list; for an OpenAI-compatible server, the model name it serves.",
            "speech_speed": "1.0 is normal; 0.25 to 4.0.",
            "max_utterance_ms": "A visitor's turn is cut here and answered.",
            "idle_timeout_s": "With nobody speaking or typing for this long, the conversation ends.",
            "max_session_s": "A conversation ends at this length, whatever is happening.",
        }
        widgets = {
            "llm_model": forms.TextInput(attrs={"list": "aura-models-chat", "autocomplete": "off"}),
            "stt_model": forms.TextInput(attrs={"list": "aura-models-stt", "autocomplete": "off"}),
            "tts_model": forms.TextInput(attrs={"list": "aura-models-tts", "autocomplete": "off"}),
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        for capability, (provider_field, _) in PROVIDER_FIELDS.items():
            if provider_field in self.fields:
                choices = CAPABILITIES[capability].provider_choices()
                current = getattr(instance, provider_field, "")
                if current and current not in dict(choices):  # stored before this check: shown, refused on save
                    choices.append((current, PROVIDER_LABELS.get(current, current)))
                self.fields[provider_field].choices = choices
        for capability, name in FALLBACK_FIELDS.items():
            if name in self.fields:
                self.fields[name].set_choices(_candidate_choices(capability, getattr(instance, name, None) or []))
        if "smart_strong_llm" in self.fields:
            self.fields["smart_strong_llm"].choices = [
                ("", "— none —"),
                *_candidate_choices(CHAT, instance.smart_strong_llm or ""),
            ]
        if (
            "voice" in self.fields
            and instance.voice
            and all(instance.voice != name for _, voices in voice_choices() for name, _ in voices)
        ):
            self.fields["voice"].choices = [*voice_choices(), ("Stored", [(instance.voice, instance.voice)])]

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        for name, refusal in offering_errors({name: cleaned.get(name) for name in OFFERING_FIELDS}).items():
            self.add_error(name, refusal)
        if OPEN in (cleaned.get("llm_provider"), cleaned.get("stt_provider"), cleaned.get("tts_provider")) and not (
            cleaned.get("openai_compatible_base_url") or self.instance.openai_compatible_base_url
        ):
            self.add_error("openai_compatible_base_url", "An OpenAI-compatible provider needs its server's URL.")
        return cleaned


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
