from __future__ import annotations

from rest_framework.routers import SimpleRouter

from conversations.api.views import ConversationViewSet, HandoffViewSet, LeadViewSet, VisitorProfileViewSet


def register(router: SimpleRouter) -> None:
    router.register("conversations", ConversationViewSet, basename="conversation")
    router.register("leads", LeadViewSet, basename="lead")
    router.register("handoffs", HandoffViewSet, basename="handoff")
    router.register("visitors", VisitorProfileViewSet, basename="visitor")
