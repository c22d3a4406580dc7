from __future__ import annotations

from rest_framework.routers import SimpleRouter

from voice.api.views import AssistantViewSet


def register(router: SimpleRouter) -> None:
    router.register("assistants", AssistantViewSet, basename="assistant")
