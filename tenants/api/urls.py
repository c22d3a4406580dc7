from __future__ import annotations

from rest_framework.routers import SimpleRouter

from tenants.api.views import ApiKeyViewSet, WidgetKeyViewSet


def register(router: SimpleRouter) -> None:
    router.register("widget-keys", WidgetKeyViewSet, basename="widget-key")
    router.register("api-keys", ApiKeyViewSet, basename="api-key")
