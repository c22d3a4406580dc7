from __future__ import annotations

from rest_framework.routers import SimpleRouter

from webhooks.api.views import WebhookDeliveryViewSet, WebhookEndpointViewSet


def register(router: SimpleRouter) -> None:
    router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
    router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
