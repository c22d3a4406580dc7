"""Usage, prices, plans, subscriptions, roll-ups and invoices. Public schema (design notes §5).

Units (docs/billing.md): seconds for audio and speech-to-text, tokens, characters, counts for
sessions and tool calls. Money is Decimal in ``AURA_BILLING_CURRENCY``, never float.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from tenants.models import Organization

ZERO = Decimal("0")


class Metric(models.TextChoices):
    SESSION = "session", "Sessions"
    AUDIO_IN_SECONDS = "audio_in_seconds", "Visitor audio (s)"
    AUDIO_OUT_SECONDS = "audio_out_seconds", "Assistant audio (s)"
    STT_SECONDS = "stt_seconds", "Speech-to-text (s)"
    LLM_INPUT_TOKENS = "llm_input_tokens", "LLM input tokens"
    LLM_OUTPUT_TOKENS = "llm_output_tokens", "LLM output tokens"
    TTS_CHARACTERS = "tts_characters", "Text-to-speech characters"
    TOOL_CALLS = "tool_calls", "Tool calls"
    PHONE_INBOUND_SECONDS = "phone_in_seconds", "Phone calls, inbound (s)"
    PHONE_OUTBOUND_SECONDS = "phone_out_seconds", "Phone calls, outbound (s)"


METRIC_UNITS = {
    Metric.SESSION: "sessions",
    Metric.AUDIO_IN_SECONDS: "seconds",
    Metric.AUDIO_OUT_SECONDS: "seconds",
    Metric.STT_SECONDS: "seconds",
    Metric.LLM_INPUT_TOKENS: "tokens",
    Metric.LLM_OUTPUT_TOKENS: "tokens",
    Metric.TTS_CHARACTERS: "characters",
    Metric.TOOL_CALLS: "calls",
    Metric.PHONE_INBOUND_SECONDS: "seconds",
    Metric.PHONE_OUTBOUND_SECONDS: "seconds",
}


class UsageEvent(models.Model):
    """One measured quantity, written in the same transaction as the turn (or conversation) it describes.

    ``idempotency_key`` is derived from what was measured (``turn:<conversation>:<index>:<metric>``,
    ``session:<conversation>``): a retried write or a re-run job inserts nothing the second time.
    ``cost`` is what the provider charges us, from the price in force at ``occurred_at``; null when
    no price is known for the provider and model (the dashboard counts those).
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+", db_index=False)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    quantity = models.DecimalField(max_digits=18, decimal_places=3)
    channel = models.CharField(max_length=8, blank=True, help_text="voice, text or phone: the conversation's channel")
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=100, blank=True)
    assistant_id = models.BigIntegerField(null=True, blank=True)
    conversation_id = models.UUIDField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)
    cost = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)

    class Meta:
        indexes = [
            # The live quota reads one organization's events since the last complete roll-up day.
            models.Index(
                fields=["organization", "occurred_at"],
                include=["metric", "channel", "quantity"],
                name="usage_org_time",
            ),
            models.Index(fields=["occurred_at"], name="usage_time"),  # roll-ups read a range of days
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.quantity} ({self.idempotency_key})"


class ProviderPrice(models.Model):
    """What a provider charges us for a metric of a model, from ``effective_from`` until the next price.

    ``model`` may be ``*``: any model of the provider without its own price.
    Cost of a quantity = quantity × price / per_quantity (e.g. $0.15 per 1,000,000 tokens).
    """

    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=100, help_text='A model name, or "*" for every model of the provider.')
    metric = models.CharField(max_length=32, choices=Metric.choices)
    price = models.DecimalField(max_digits=14, decimal_places=6, validators=[MinValueValidator(ZERO)])
    per_quantity = models.PositiveIntegerField(
        default=1_000_000, validators=[MinValueValidator(1)], help_text="The price is per this many units."
    )
    effective_from = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider", "model", "metric", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model", "metric", "effective_from"], name="price_unique_start")
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.model} {self.metric} from {self.effective_from:%Y-%m-%d}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        from billing.cache import forget_cached_prices  # turns are priced from a short-lived copy

        forget_cached_prices()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        from billing.cache import forget_cached_prices

        forget_cached_prices()
        return super().delete(*args, **kwargs)


class CapKind(models.TextChoices):
    HARD = "hard", "Hard: refuse sessions past the included usage"
    SOFT = "soft", "Soft: charge overage, alert only"


class Plan(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    monthly_fee = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(ZERO)])
    included_minutes = models.PositiveIntegerField(help_text="Voice minutes (visitor + assistant audio) per month.")
    overage_per_minute = models.DecimalField(
        max_digits=10, decimal_places=4, default=ZERO, validators=[MinValueValidator(ZERO)]
    )
    included_text_tokens = models.PositiveBigIntegerField(
        default=0, help_text="LLM tokens of text-only conversations included per month."
    )
    overage_per_1k_tokens = models.DecimalField(
        max_digits=10, decimal_places=4, default=ZERO, validators=[MinValueValidator(ZERO)]
    )
    # Phone calls (telephony): every minute is billed at these prices, none is included.
    phone_inbound_per_minute = models.DecimalField(
        max_digits=10, decimal_places=4, default=ZERO, validators=[MinValueValidator(ZERO)]
    )
    phone_outbound_per_minute = models.DecimalField(
        max_digits=10, decimal_places=4, default=ZERO, validators=[MinValueValidator(ZERO)]
    )
    max_concurrent_sessions = models.PositiveIntegerField(default=5, help_text="0: no limit.")
    cap = models.CharField(max_length=8, choices=CapKind.choices, default=CapKind.SOFT)
    is_active = models.BooleanField(default=True, help_text="Offered to new subscriptions.")
    self_service = models.BooleanField(
        default=False,
        help_text="A tenant's admins may switch to this plan themselves; for other plans their request "
        "waits for staff approval.",
    )

    class Meta:
        ordering = ["monthly_fee", "name"]

    def __str__(self) -> str:
        return self.name


class SubscriptionStatus(models.TextChoices):
    TRIAL = "trial", "Trial"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELLED = "cancelled", "Cancelled"


class Subscription(models.Model):
    """An organization's subscription. ``plan`` is the plan now; ``periods`` hold the history."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.TRIAL)
    started_at = models.DateTimeField(default=timezone.now)
    trial_ends_at = models.DateTimeField(null=True, blank=True, help_text="No monthly fee before this moment.")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization__name"]

    def __str__(self) -> str:
        return f"{self.organization} on {self.plan}"


class PlanPeriod(models.Model):
    """The plan in force from ``starts_at`` until ``ends_at`` (open-ended while current)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="periods")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["subscription", "starts_at"]
        indexes = [models.Index(fields=["subscription", "starts_at"], name="plan_period_start")]

    def __str__(self) -> str:
        return f"{self.plan} from {self.starts_at:%Y-%m-%d %H:%M}"


class PlanChangeStatus(models.TextChoices):
    PENDING = "pending", "Waiting for staff"
    APPLIED = "applied", "Applied"
    DECLINED = "declined", "Declined"
    WITHDRAWN = "withdrawn", "Replaced by a newer request"


class PlanChangeRequest(models.Model):
    """A tenant's admins ask for another plan. Self-service plans apply at once; others wait for staff."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=PlanChangeStatus.choices, default=PlanChangeStatus.PENDING)
    requested_by = models.CharField(max_length=200)
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(status="pending"), name="plan_request_one_pending"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.plan} ({self.status})"


class UsageTotal(models.Model):
    """What a roll-up row holds: one organization's total of a metric over a period, with its cost."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    channel = models.CharField(max_length=8, blank=True)
    quantity = models.DecimalField(max_digits=20, decimal_places=3)
    cost = models.DecimalField(max_digits=20, decimal_places=8)
    events = models.PositiveIntegerField()
    unpriced_events = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class DailyUsage(UsageTotal):
    """Roll-up: one organization's total of a metric on a day (UTC), with its cost to us."""

    day = models.DateField()

    class Meta:
        # No default ordering: it would join organizations into every aggregate the dashboards run.
        constraints = [
            models.UniqueConstraint(fields=["organization", "day", "metric", "channel"], name="daily_usage_unique")
        ]
        indexes = [
            # The charts of the last 30 days read only this index.
            models.Index(fields=["day", "metric"], include=["quantity", "unpriced_events"], name="daily_usage_day")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.metric} {self.quantity}"


class MonthlyUsage(UsageTotal):
    """Roll-up of the roll-up: one organization's total of a metric in a calendar month (``month`` = its 1st)."""

    month = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "month", "metric", "channel"], name="monthly_usage_unique")
        ]
        indexes = [
            # Every dashboard figure of a month (per organization, and 12 months of cost) reads only this index.
            models.Index(
                fields=["month"],
                include=["organization", "metric", "channel", "quantity", "cost"],
                name="monthly_usage_month",
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.metric} {self.quantity}"


class RollupState(models.Model):
    """Where the scheduled roll-up stands: every day before ``complete_before`` is in DailyUsage."""

    name = models.CharField(max_length=32, unique=True)
    complete_before = models.DateField()
    last_run_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: complete before {self.complete_before}"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Finalized, awaiting payment"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class Invoice(models.Model):
    """A calendar month's invoice. Drafts are recomputed; from finalization on it never changes."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="invoices")
    period_start = models.DateField()
    period_end = models.DateField(help_text="Exclusive: the first day of the next month.")
    status = models.CharField(max_length=8, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    number = models.CharField(max_length=32, unique=True)
    currency = models.CharField(max_length=3)
    plan_name = models.CharField(max_length=200)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=4)
    tax = models.DecimalField(max_digits=12, decimal_places=2)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    provider_cost = models.DecimalField(max_digits=18, decimal_places=8, help_text="What the usage cost us.")
    computed_at = models.DateTimeField()
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "number"]
        constraints = [models.UniqueConstraint(fields=["organization", "period_start"], name="invoice_one_per_period")]
        indexes = [models.Index(fields=["status", "period_start"], name="invoice_status")]

    def __str__(self) -> str:
        return self.number

    @property
    def last_day(self) -> date:
        return self.period_end - timedelta(days=1)

    @property
    def tax_percent(self) -> Decimal:
        return (self.tax_rate * 100).normalize()


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=32)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=20, decimal_places=3)
    unit = models.CharField(max_length=20, blank=True)
    unit_price = models.DecimalField(max_digits=14, decimal_places=6)
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["invoice", "position"]

    def __str__(self) -> str:
        return self.description


class UsageAlert(models.Model):
    """An alert to a tenant's admins that a period's usage crossed a threshold. One per threshold and period."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField()
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the plan's included usage.")
    used_percent = models.DecimalField(max_digits=10, decimal_places=1)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["organization", "period_start", "threshold"], name="alert_once")]

    def __str__(self) -> str:
        return f"{self.organization}: {self.threshold}% of {self.period_start:%Y-%m}"
