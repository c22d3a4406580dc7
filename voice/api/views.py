"""``/api/v1/assistants/``: CRUD. Writes go through voice.actions (the admin's validation)."""

from __future__ import annotations

from rest_framework.serializers import BaseSerializer

from aura.api.errors import Conflict
from aura.api.views import TenantModelViewSet
from voice.actions import AssistantInUseError, do_delete_assistant, do_save_assistant
from voice.api.serializers import AssistantSerializer
from voice.models import Assistant


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
