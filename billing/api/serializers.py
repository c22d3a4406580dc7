"""Usage reports and invoices over the API. What usage cost the platform is never shown to tenants."""

from __future__ import annotations

from datetime import date, timedelta

from rest_framework import serializers

from billing.models import Invoice, InvoiceLine, Metric

MAX_USAGE_DAYS = 366


class UsageQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First day (UTC), default: the 1st of this month.")
    end = serializers.DateField(required=False, help_text="Last day, inclusive (UTC), default: today.")
    metric = serializers.MultipleChoiceField(
        choices=Metric.choices, required=False, help_text="Only these metrics (repeat the parameter); default: all."
    )

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        from django.utils import timezone

        today = timezone.now().date()
        attrs.setdefault("end", today)
        attrs.setdefault("start", attrs["end"].replace(day=1))
        start, end = attrs["start"], attrs["end"]
        if start > end:
            raise serializers.ValidationError({"start": ["Choose a start on or before the end."]})
        if end - start >= timedelta(days=MAX_USAGE_DAYS):
            raise serializers.ValidationError({"end": [f"Ask for at most {MAX_USAGE_DAYS} days at a time."]})
        if start < date(2000, 1, 1) or end > date(9000, 1, 1):
            raise serializers.ValidationError({"start": ["Choose days between 2000 and 9000."]})
        return attrs


class UsageRowSerializer(serializers.Serializer):
    day = serializers.DateField()
    metric = serializers.ChoiceField(choices=Metric.choices)
    unit = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=20, decimal_places=3)


class UsageTotalSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=Metric.choices)
    unit = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=24, decimal_places=3)


class UsageReportSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    days = UsageRowSerializer(many=True, help_text="Days without usage of a metric are left out.")
    totals = UsageTotalSerializer(many=True)


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ("position", "kind", "description", "quantity", "unit", "unit_price", "amount")
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = (
            "id",
            "number",
            "status",
            "period_start",
            "period_end",
            "currency",
            "plan_name",
            "subtotal",
            "tax_rate",
            "tax",
            "total",
            "computed_at",
            "finalized_at",
            "paid_at",
            "lines",
        )
        read_only_fields = fields
