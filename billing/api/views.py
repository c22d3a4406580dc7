"""``/api/v1/usage/`` (by day and metric for a period) and ``/api/v1/invoices/`` (read)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.serializers import InvoiceSerializer, UsageQuerySerializer, UsageReportSerializer
from billing.models import METRIC_UNITS, Invoice
from billing.queries import daily_usage
from tenants.api.base import ApiViewMixin, OrganizationReadOnlyViewSet


class UsageViewSet(ApiViewMixin, viewsets.ViewSet):
    single_object_list = True  # GET /usage/ answers one report

    @extend_schema(parameters=[UsageQuerySerializer], responses=UsageReportSerializer)
    def list(self, request: Request) -> Response:
        """Usage by day and metric, live (today included). Units: seconds, tokens, characters, counts."""
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end, metrics = (query.validated_data.get(name) for name in ("start", "end", "metric"))
        rows = daily_usage(self.organization.pk, start, end, sorted(metrics) if metrics else None)
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for _, metric, quantity in rows:
            totals[metric] += quantity
        report = {
            "start": start,
            "end": end,
            "days": [{"day": d, "metric": m, "unit": METRIC_UNITS[m], "quantity": q} for d, m, q in rows],
            "totals": [{"metric": m, "unit": METRIC_UNITS[m], "quantity": q} for m, q in sorted(totals.items())],
        }
        return Response(UsageReportSerializer(report).data)


class InvoiceViewSet(OrganizationReadOnlyViewSet):
    queryset = Invoice.objects.prefetch_related("lines")
    serializer_class = InvoiceSerializer
    cursor_ordering = ("-period_start", "-id")
