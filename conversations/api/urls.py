from __future__ import annotations

from rest_framework.routers import SimpleRouter

from conversations.api.views import HandoffViewSet, LeadViewSet, VisitorProfileViewSet


def register(router: SimpleRouter) -> None:
    # conversations/ itself is registered by voice.api.urls: it adds the text conversations an assistant answers.
    router.register("leads", LeadViewSet, basename="lead")
    router.register("handoffs", HandoffViewSet, basename="handoff")
    router.register("visitors", VisitorProfileViewSet, basename="visitor")
