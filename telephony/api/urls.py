from __future__ import annotations

from rest_framework.routers import SimpleRouter

from telephony.api.views import CallViewSet


def register(router: SimpleRouter) -> None:
    router.register("calls", CallViewSet, basename="call")
