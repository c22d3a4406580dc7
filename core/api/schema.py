"""OpenAPI: the Bearer scheme, and the error responses every operation may give, in the one error shape.
Every operation has a summary and a description written for API clients: the action's docstring or the
viewset's own (never one inherited from the platform's base classes), and the scope the key needs."""

from __future__ import annotations

import inspect
import re
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS

# Statuses every authenticated operation can answer with, besides its own success.
_COMMON_ERRORS = ("400", "401", "403", "404", "409", "415", "429")


class ErrorInfoSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, such as `not_found`.")
    message = serializers.CharField(help_text="For people; may change.")
    details = serializers.JSONField(allow_null=True, help_text="Field errors of a validation_error, else null.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorInfoSerializer()


# The resource under /api/v1/<segment>/, singular and plural, as the reference names it.
_NOUNS = {
    "api-keys": ("API key", "API keys"),
    "assistants": ("assistant", "assistants"),
    "calls": ("call", "calls"),
    "conversations": ("conversation", "conversations"),
    "documents": ("knowledge document", "knowledge documents"),
    "handoffs": ("hand-off", "hand-offs"),
    "invoices": ("invoice", "invoices"),
    "leads": ("lead", "leads"),
    "tools": ("HTTP tool", "HTTP tools"),
    "usage": ("usage report", "usage reports"),
    "visitors": ("visitor profile", "visitor profiles"),
    "webhook-deliveries": ("webhook delivery", "webhook deliveries"),
    "webhooks": ("webhook endpoint", "webhook endpoints"),
    "widget-keys": ("widget key", "widget keys"),
}
_VERBS = {
    "list": "List {plural}",
    "create": "Create {a} {singular}",
    "retrieve": "Get {a} {singular}",
    "update": "Replace {a} {singular}",
    "partial_update": "Update {a} {singular}",
    "destroy": "Delete {a} {singular}",
}

# Extra actions whose docstring's first words do not make a title.
_ACTION_SUMMARIES = {
    "export": "Export {plural}",
    "secret": "Get the signing secret",
    "roll_secret": "Roll the signing secret",
    "replay": "Replay {a} {singular}",
    "ping": "Ping {a} {singular}",
}


def _article(noun: str) -> str:
    return "an" if re.match(r"[aeiou]|API|HTTP", noun) else "a"


def _markdown(doc: str) -> str:
    return doc.replace("``", "`")


def _first_sentence(doc: str) -> str:
    sentence = re.split(r"(?<=[^.])[.;:](?:\s|$)", doc.strip(), maxsplit=1)[0]
    return re.sub(r"\s*\([^)]*\)", "", sentence).strip()


class AuraAutoSchema(AutoSchema):
    def _own_docs(self) -> tuple[str, str]:
        """(the action's docstring, the viewset's own docstring), each possibly empty."""
        action = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        action_doc = inspect.cleandoc(action.__doc__) if action is not None and action.__doc__ else ""
        class_doc = self.view.__class__.__dict__.get("__doc__") or ""
        return action_doc, inspect.cleandoc(class_doc) if class_doc else ""

    def _nouns(self) -> tuple[str, str]:
        segment = self.path.removeprefix("/api/v1/").split("/", 1)[0]
        return _NOUNS.get(segment, (segment.replace("-", " ").removesuffix("s"), segment.replace("-", " ")))

    def get_summary(self) -> str:
        action = getattr(self.view, "action", None) or self.method.lower()
        singular, plural = self._nouns()
        if action in _VERBS and not (action == "list" and not self._is_list_view()):
            return _VERBS[action].format(a=_article(singular), singular=singular, plural=plural)
        if action in _ACTION_SUMMARIES:
            return _ACTION_SUMMARIES[action].format(a=_article(singular), singular=singular, plural=plural)
        action_doc, _ = self._own_docs()
        if action == "list":  # a single report on a list route (usage)
            return f"Get {plural.removesuffix(' reports')}" if singular.endswith(" report") else f"Get the {singular}"
        if action_doc:
            return _markdown(_first_sentence(action_doc))
        return f"{action.replace('_', ' ').capitalize()} {_article(singular)} {singular}"

    def get_description(self) -> str:
        action_doc, class_doc = self._own_docs()
        text = _markdown(action_doc or class_doc)
        if not self.get_auth():
            return text
        scope = getattr(self.view, "action_scopes", {}).get(getattr(self.view, "action", None))
        if not scope:
            safe = self.method.upper() in SAFE_METHODS
            scope = getattr(self.view, "read_scope" if safe else "write_scope", "read" if safe else "write")
        return f"{text}\n\nNeeds an API key with the `{scope}` scope.".strip()

    def _is_list_view(self, serializer: object = None) -> bool:
        if getattr(self.view, "single_object_list", False):  # a report, not a collection
            return False
        return super()._is_list_view(serializer)

    def _get_response_bodies(self, direction: str = "response") -> dict[str, object]:
        responses = super()._get_response_bodies(direction=direction)
        if not self.get_auth():  # the schema and docs themselves
            return responses
        for code in _COMMON_ERRORS:
            responses.setdefault(code, self._get_response_for_code(ErrorSerializer, code, direction=direction))
        return responses


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sk_<prefix>_<secret>",
            "description": "An API key from your admin's API keys page (or POST /api/v1/api-keys/).",
        }


class PlatformSchemaGenerator(SchemaGenerator):
    """The API lives on the platform host: without an explicit urlconf (the `spectacular` command),
    describe the platform host's URLs, exactly as `/api/schema/` does, not the tenant hosts'."""

    def __init__(self, *args: Any, urlconf: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, urlconf=urlconf or settings.PUBLIC_SCHEMA_URLCONF, **kwargs)
