from __future__ import annotations

from rest_framework.routers import SimpleRouter

from voice.api.conversations import ConversationViewSet
from voice.api.views import AssistantViewSet, HttpToolViewSet


def register(router: SimpleRouter) -> None:
    router.register("assistants", AssistantViewSet, basename="assistant")
    router.register("tools", HttpToolViewSet, basename="tool")
    router.register("conversations", ConversationViewSet, basename="conversation")  # with text conversations
