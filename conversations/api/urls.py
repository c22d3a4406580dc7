from __future__ import annotations

from rest_framework.routers import SimpleRouter

from conversations.api.views import ConversationViewSet


def register(router: SimpleRouter) -> None:
    router.register("conversations", ConversationViewSet, basename="conversation")
