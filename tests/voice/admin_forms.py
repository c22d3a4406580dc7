"""The tenant admin's assistant form as a browser posts it, for tests of the admin."""

from __future__ import annotations

import json

from django.forms.models import model_to_dict

from voice.admin import AssistantAdmin
from voice.models import Assistant

FALLBACKS = ("llm_fallbacks", "stt_fallbacks", "tts_fallbacks")


def assistant_form_data(assistant: Assistant, **changes: object) -> dict[str, object]:
    """Every field of the assistant's admin form as the browser posts it (JSON fields as JSON text)."""
    shown = [name for _, options in AssistantAdmin.fieldsets for name in options["fields"]]
    names = [name for name in shown if name not in AssistantAdmin.readonly_fields]
    values = {**model_to_dict(assistant, fields=names), **changes}
    data: dict[str, object] = {}
    for name in names:
        value = values[name]
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif name == "tools":
            data[name] = value  # checkboxes: one value per ticked tool
        elif name in FALLBACKS:
            for slot, candidate in enumerate(value):  # one select per place in the order
                data[f"{name}_{slot}"] = candidate
        elif isinstance(value, list):
            data[name] = json.dumps(value)
        elif value is None:
            data[name] = ""
        else:
            data[name] = value
    return data
