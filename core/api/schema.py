"""OpenAPI: the Bearer scheme, and the error responses every operation may give, in the one error shape."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

# Statuses every authenticated operation can answer with, besides its own success.
_COMMON_ERRORS = ("400", "401", "403", "404", "409", "415", "429")


class ErrorInfoSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code; see docs/api.md.")
    message = serializers.CharField(help_text="For people; may change.")
    details = serializers.JSONField(allow_null=True, help_text="Field errors of a validation_error, else null.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorInfoSerializer()


class AuraAutoSchema(AutoSchema):
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
