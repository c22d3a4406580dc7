from __future__ import annotations

from rest_framework.routers import SimpleRouter

from knowledge.api.views import DocumentViewSet


def register(router: SimpleRouter) -> None:
    router.register("documents", DocumentViewSet, basename="document")
