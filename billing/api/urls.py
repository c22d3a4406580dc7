from __future__ import annotations

from rest_framework.routers import SimpleRouter

from billing.api.views import InvoiceViewSet, UsageViewSet


def register(router: SimpleRouter) -> None:
    router.register("usage", UsageViewSet, basename="usage")
    router.register("invoices", InvoiceViewSet, basename="invoice")
