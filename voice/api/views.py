"""``/api/v1/assistants/`` and ``/api/v1/tools/``: CRUD. Writes go through voice.actions (the admin's validation)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from core.api.errors import Conflict
from tenants.api.base import TenantModelViewSet
from tenants.models import ApiScope
from voice.actions import (
    AssistantInUseError,
    do_delete_assistant,
    do_delete_http_tool,
    do_save_assistant,
    do_save_http_tool,
)
from voice.api.serializers import AssistantSerializer, HttpToolSerializer, ToolSecretSerializer
from voice.models import Assistant, HttpTool


class AssistantViewSet(TenantModelViewSet):
    queryset = Assistant.objects.all()
    serializer_class = AssistantSerializer
    cursor_ordering = ("name", "id")

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = do_save_assistant(Assistant(**serializer.validated_data))

    def perform_update(self, serializer: BaseSerializer) -> None:
        assistant = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(assistant, field, value)
        serializer.instance = do_save_assistant(assistant)

    def perform_destroy(self, instance: Assistant) -> None:
        try:
            do_delete_assistant(instance)
        except AssistantInUseError as exc:
            raise Conflict(str(exc), "assistant_in_use") from None


class HttpToolViewSet(TenantModelViewSet):
    """Tenant-defined HTTP tools. The signing secret is shown in full only to admin keys (``secret``)."""

    queryset = HttpTool.objects.prefetch_related("assistants")
    serializer_class = HttpToolSerializer
    cursor_ordering = ("name", "id")
    action_scopes = {"secret": ApiScope.ADMIN}

    def perform_create(self, serializer: BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        assistants = data.pop("assistants", [])
        serializer.instance = do_save_http_tool(HttpTool(**data), assistants=assistants)

    def perform_update(self, serializer: BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        assistants = data.pop("assistants", None)
        tool = serializer.instance
        for field, value in data.items():
            setattr(tool, field, value)
        serializer.instance = do_save_http_tool(tool, assistants=assistants, headers_set="headers" in data)

    def perform_destroy(self, instance: HttpTool) -> None:
        do_delete_http_tool(instance)

    @extend_schema(request=None, responses=ToolSecretSerializer)
    @action(detail=True, methods=["get"])
    def secret(self, request: Request, pk: str | None = None) -> Response:
        """The signing secret, in full (admin scope)."""
        return Response({"secret": self.get_object().signing_secret})
