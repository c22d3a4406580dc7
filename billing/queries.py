"""Reads: prices, plan segments, usage of a period, quota state. Dashboards read roll-ups (billing.dashboards)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from billing.models import (
    CapKind,
    DailyUsage,
    Metric,
    MonthlyUsage,
    PlanPeriod,
    ProviderPrice,
    RollupState,
    Subscription,
    SubscriptionStatus,
    UsageEvent,
)
from billing.periods import Period, midnight
from billing.pricing import PlanTerms, Segment, UsageTotals, allowance

ROLLUP_STATE = "usage"
VOICE_METRICS = (Metric.AUDIO_IN_SECONDS, Metric.AUDIO_OUT_SECONDS)
TOKEN_METRICS = (Metric.LLM_INPUT_TOKENS, Metric.LLM_OUTPUT_TOKENS)
TEXT_CHANNEL = "text"
COST_PLACES = Decimal("0.00000001")


# ------------------------------------------------------------------ prices
@dataclass(frozen=True, slots=True)
class Price:
    price: Decimal
    per_quantity: int

    def cost(self, quantity: Decimal) -> Decimal:
        return (quantity * self.price / self.per_quantity).quantize(COST_PLACES, rounding=ROUND_HALF_UP)


def prices_at(keys: Iterable[tuple[str, str, str]], at: datetime) -> dict[tuple[str, str, str], Price]:
    """The price in force at ``at`` for each (provider, model, metric); a provider's "*" price when the
    model has none of its own. Keys without any price are absent."""
    keys = set(keys)
    if not keys:
        return {}
    providers = {provider for provider, _, _ in keys}
    models = {model for _, model, _ in keys} | {"*"}
    rows = (
        ProviderPrice.objects.filter(provider__in=providers, model__in=models, effective_from__lte=at)
        .order_by("provider", "model", "metric", "-effective_from")
        .values_list("provider", "model", "metric", "price", "per_quantity")
    )
    latest: dict[tuple[str, str, str], Price] = {}
    for provider, model, metric, price, per in rows:
        latest.setdefault((provider, model, metric), Price(price, per))
    found = {}
    for provider, model, metric in keys:
        price = latest.get((provider, model, metric)) or latest.get((provider, "*", metric))
        if price is not None:
            found[(provider, model, metric)] = price
    return found


# ------------------------------------------------------------------ plans over time
def terms_of(plan: object) -> PlanTerms:
    return PlanTerms(
        name=plan.name,
        monthly_fee=plan.monthly_fee,
        included_minutes=plan.included_minutes,
        overage_per_minute=plan.overage_per_minute,
        included_text_tokens=plan.included_text_tokens,
        overage_per_1k_tokens=plan.overage_per_1k_tokens,
        hard_cap=plan.cap == CapKind.HARD,
    )


def segments_of(subscription: Subscription, periods: Iterable[PlanPeriod], *, until: datetime) -> list[Segment]:
    """The subscription's plan history as segments, cut at its cancellation and split at the trial's end.

    An open period runs to ``until`` (the end of the billing period being computed).
    """
    end_of_service = min(until, subscription.cancelled_at) if subscription.cancelled_at else until
    trial_end = subscription.trial_ends_at
    segments: list[Segment] = []
    for period in sorted(periods, key=lambda p: p.starts_at):
        start, end = period.starts_at, min(period.ends_at or end_of_service, end_of_service)
        if end <= start:
            continue
        terms = terms_of(period.plan)
        if trial_end is not None and start < trial_end:
            cut = min(trial_end, end)
            segments.append(Segment(terms, start, cut, trial=True))
            start = cut
        if end > start:
            segments.append(Segment(terms, start, end))
    return segments


def subscriptions_with_periods(organization_ids: Iterable[int] | None = None) -> list[Subscription]:
    queryset = Subscription.objects.select_related("plan", "organization").prefetch_related("periods__plan")
    if organization_ids is not None:
        queryset = queryset.filter(organization_id__in=list(organization_ids))
    return list(queryset)


# ------------------------------------------------------------------ usage of a period
def rollup_complete_before() -> datetime | None:
    """Every event before this moment is in DailyUsage (as of the last scheduled roll-up)."""
    day = RollupState.objects.filter(name=ROLLUP_STATE).values_list("complete_before", flat=True).first()
    return midnight(day) if day else None


def period_usage(organization_id: int, period: Period) -> UsageTotals:
    """Usage that counts against the plan, live: complete roll-up days, plus raw events since."""
    start, end = period.starts_at, period.ends_at
    split = rollup_complete_before()
    split = start if split is None else min(max(split, start), end)
    rows: list[tuple[str, str, Decimal]] = []
    if split > start:
        rows += (
            DailyUsage.objects.filter(
                organization_id=organization_id, day__gte=start.date(), day__lt=split.date(), **_counting()
            )
            .values_list("metric", "channel")
            .annotate(total=Sum("quantity"))
            .values_list("metric", "channel", "total")
        )
    if end > split:
        rows += (
            UsageEvent.objects.filter(
                organization_id=organization_id, occurred_at__gte=split, occurred_at__lt=end, **_counting()
            )
            .values_list("metric", "channel")
            .annotate(total=Sum("quantity"))
            .values_list("metric", "channel", "total")
        )
    return totals_from_rows(rows)


def _counting() -> dict[str, object]:
    return {"metric__in": [*VOICE_METRICS, *TOKEN_METRICS]}


def totals_from_rows(rows: Iterable[tuple[str, str, Decimal]]) -> UsageTotals:
    voice, tokens = Decimal(0), Decimal(0)
    for metric, channel, total in rows:
        if metric in VOICE_METRICS:
            voice += total
        elif metric in TOKEN_METRICS and channel == TEXT_CHANNEL:
            tokens += total
    return UsageTotals(voice_seconds=voice, text_tokens=int(tokens))


def rolled_up_totals(period: Period, organization_ids: Iterable[int] | None = None) -> dict[int, UsageTotals]:
    """Each organization's plan usage in a month, from the monthly roll-up (one query)."""
    queryset = MonthlyUsage.objects.filter(month=period.start, **_counting())
    if organization_ids is not None:
        queryset = queryset.filter(organization_id__in=list(organization_ids))
    rows: dict[int, list[tuple[str, str, Decimal]]] = {}
    for organization_id, metric, channel, quantity in queryset.values_list(
        "organization_id", "metric", "channel", "quantity"
    ):
        rows.setdefault(organization_id, []).append((metric, channel, quantity))
    return {organization_id: totals_from_rows(found) for organization_id, found in rows.items()}


def rolled_up_costs(period: Period) -> dict[int, Decimal]:
    """What each organization's usage in a month cost us, from the monthly roll-up."""
    return dict(
        MonthlyUsage.objects.filter(month=period.start)
        .values_list("organization_id")
        .annotate(total=Sum("cost"))
        .values_list("organization_id", "total")
    )


def unpriced_usage(since: datetime) -> int:
    return DailyUsage.objects.filter(day__gte=since.date()).aggregate(n=Sum("unpriced_events"))["n"] or 0


# ------------------------------------------------------------------ quota
@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """May this organization open a new session, and under which limits?"""

    allows_sessions: bool
    code: str = ""
    message: str = ""
    max_concurrent: int = 0  # 0: no limit
    hard_cap: bool = False
    used_percent: Decimal | None = None
    plan: str = ""


QUOTA_MESSAGE = "This assistant has reached its usage limit for this month. Please try again later."
INACTIVE_MESSAGE = "This assistant is not available right now."
CONCURRENT_MESSAGE = "All of this assistant's lines are busy right now. Please try again in a minute."


def usage_share(usage: UsageTotals, segments: list[Segment], period: Period) -> Decimal | None:
    """Usage over the period's allowance (1 = all of it): the larger of minutes and text tokens.

    None when the plan includes neither. Exact: the cap compares this, not a rounded percentage.
    """
    included = allowance(segments, period.starts_at, period.ends_at)
    shares = []
    if included.minutes > 0:
        shares.append(usage.voice_seconds / 60 / included.minutes)
    if included.text_tokens > 0:
        shares.append(Decimal(usage.text_tokens) / included.text_tokens)
    return max(shares) if shares else None


def used_percent(usage: UsageTotals, segments: list[Segment], period: Period) -> Decimal | None:
    """The share as a percentage with one decimal, for people (never for the cap's decision)."""
    share = usage_share(usage, segments, period)
    return None if share is None else (share * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def quota_status(organization_id: int, *, now: datetime | None = None) -> QuotaStatus:
    """Three small indexed queries: the subscription with its history, complete roll-up days, today's events.

    An organization without a subscription (the platform, an internal account) has no limits.
    """
    now = now or timezone.now()
    subscription = next(iter(subscriptions_with_periods([organization_id])), None)
    if subscription is None:
        return QuotaStatus(allows_sessions=True)
    plan = subscription.plan
    if subscription.status == SubscriptionStatus.CANCELLED:
        return QuotaStatus(allows_sessions=False, code="subscription_inactive", message=INACTIVE_MESSAGE)
    period = Period.month_of(now)
    segments = segments_of(subscription, subscription.periods.all(), until=period.ends_at)
    usage = period_usage(organization_id, period)
    share = usage_share(usage, segments, period)
    hard = plan.cap == CapKind.HARD
    over = hard and share is not None and share >= 1
    return QuotaStatus(
        allows_sessions=not over,
        code="quota_exceeded" if over else "",
        message=QUOTA_MESSAGE if over else "",
        max_concurrent=plan.max_concurrent_sessions,
        hard_cap=hard,
        used_percent=used_percent(usage, segments, period),
        plan=plan.name,
    )


def organizations_with_events(start: datetime, end: datetime) -> list[int]:
    return list(
        UsageEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .values_list("organization_id", flat=True)
        .distinct()
    )


def earliest_event_at() -> datetime | None:
    return UsageEvent.objects.order_by("occurred_at").values_list("occurred_at", flat=True).first()


def subscriptions_for_period(period: Period) -> list[Subscription]:
    """Subscriptions with a plan in force at some moment of the period."""
    overlapping = PlanPeriod.objects.filter(starts_at__lt=period.ends_at).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=period.starts_at)
    )
    ids = overlapping.values_list("subscription__organization_id", flat=True).distinct()
    return subscriptions_with_periods(ids)


def invoice_counts() -> list[dict[str, object]]:
    from billing.models import Invoice

    return list(Invoice.objects.values("status").annotate(n=Count("id"), total=Sum("total")).order_by("status"))


def grace_period() -> timedelta:
    return timedelta(days=settings.AURA_BILLING_GRACE_DAYS)
