"""Reads: prices, plan segments, usage of a period, quota state. Dashboards read roll-ups (billing.dashboards)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.cache import PRICE_CACHE_S, price_rows_cache
from billing.models import (
    CapKind,
    DailyUsage,
    Metric,
    MonthlyUsage,
    Plan,
    PlanPeriod,
    ProviderPrice,
    RollupState,
    Subscription,
    SubscriptionStatus,
    UsageEvent,
)
from billing.periods import Period, midnight
from billing.pricing import (
    Allowance,
    PlanChangePreview,
    PlanTerms,
    Segment,
    UsageTotals,
    allowance,
    preview_plan_change,
)

ROLLUP_STATE = "usage"
VOICE_METRICS = (Metric.AUDIO_IN_SECONDS, Metric.AUDIO_OUT_SECONDS)
TOKEN_METRICS = (Metric.LLM_INPUT_TOKENS, Metric.LLM_OUTPUT_TOKENS)
PHONE_METRICS = (Metric.PHONE_INBOUND_SECONDS, Metric.PHONE_OUTBOUND_SECONDS)
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
    providers = frozenset(provider for provider, _, _ in keys)
    models = frozenset({model for _, model, _ in keys} | {"*"})
    latest: dict[tuple[str, str, str], Price] = {}
    for provider, model, metric, effective_from, price, per in _price_rows(providers, models):
        if effective_from <= at:  # rows come newest first within each (provider, model, metric)
            latest.setdefault((provider, model, metric), Price(price, per))
    found = {}
    for provider, model, metric in keys:
        price = latest.get((provider, model, metric)) or latest.get((provider, "*", metric))
        if price is not None:
            found[(provider, model, metric)] = price
    return found


def _price_rows(providers: frozenset[str], models: frozenset[str]) -> list[tuple]:
    """Every price row (all dates) of these providers and models, kept for a minute in this process:
    each assistant turn is priced, and the same few rows would otherwise be read for every one.
    A price saved in the admin clears this process's copy; other processes see it within a minute."""
    now = time.monotonic()
    cached = price_rows_cache.get((providers, models))
    if cached is not None and now - cached[0] < PRICE_CACHE_S:
        return cached[1]
    rows = list(
        ProviderPrice.objects.filter(provider__in=providers, model__in=models)
        .order_by("provider", "model", "metric", "-effective_from")
        .values_list("provider", "model", "metric", "effective_from", "price", "per_quantity")
    )
    if len(price_rows_cache) > 256:
        price_rows_cache.clear()
    price_rows_cache[(providers, models)] = (now, rows)
    return rows


# ------------------------------------------------------------------ plans over time
_PLAN_FIELDS = (
    "name",
    "monthly_fee",
    "included_minutes",
    "overage_per_minute",
    "included_text_tokens",
    "overage_per_1k_tokens",
    "cap",
    "phone_inbound_per_minute",
    "phone_outbound_per_minute",
)
_FIRST_PLAN_COLUMN = 9  # in billables()' rows: the period's plan, then the subscription's current plan
_PLAN_COLUMNS = slice(_FIRST_PLAN_COLUMN, _FIRST_PLAN_COLUMN + len(_PLAN_FIELDS))
_CURRENT_PLAN_COLUMNS = slice(_FIRST_PLAN_COLUMN + len(_PLAN_FIELDS), _FIRST_PLAN_COLUMN + 2 * len(_PLAN_FIELDS))


def _terms(
    name: str,
    fee: Decimal,
    minutes: int,
    per_minute: Decimal,
    tokens: int,
    per_1k: Decimal,
    cap: str,
    phone_in: Decimal,
    phone_out: Decimal,
) -> PlanTerms:
    return PlanTerms(
        name,
        fee,
        minutes,
        per_minute,
        tokens,
        per_1k,
        hard_cap=cap == CapKind.HARD,
        phone_in_per_minute=phone_in,
        phone_out_per_minute=phone_out,
    )


@dataclass(frozen=True, slots=True)
class Billable:
    """An organization's subscription as billing needs it for one period: state, current plan, segments."""

    organization_id: int
    name: str
    slug: str
    status: str
    plan: PlanTerms  # the plan now
    max_concurrent: int
    segments: tuple[Segment, ...]

    @property
    def plan_names(self) -> str:
        return ", ".join(dict.fromkeys(segment.terms.name for segment in self.segments)) or self.plan.name


def cut_segments(
    history: Iterable[tuple[PlanTerms, datetime, datetime | None]],
    *,
    until: datetime,
    trial_ends_at: datetime | None,
    cancelled_at: datetime | None,
) -> list[Segment]:
    """Plan periods as segments, ended at a cancellation and split at the trial's end; an open
    period runs to ``until`` (the end of the billing period being computed)."""
    end_of_service = min(until, cancelled_at) if cancelled_at else until
    segments: list[Segment] = []
    for terms, starts_at, ends_at in sorted(history, key=lambda row: row[1]):
        start, end = starts_at, min(ends_at or end_of_service, end_of_service)
        if end <= start:
            continue
        if trial_ends_at is not None and start < trial_ends_at:
            cut = min(trial_ends_at, end)
            segments.append(Segment(terms, start, cut, trial=True))
            start = cut
        if end > start:
            segments.append(Segment(terms, start, end))
    return segments


def billables(period: Period, organization_ids: Iterable[int] | None = None) -> list[Billable]:
    """Every organization with a plan in force at some moment of the period, with its segments.

    One query of plain tuples (no model instances): the staff dashboard does this for every
    organization on each view.
    """
    rows = PlanPeriod.objects.filter(starts_at__lt=period.ends_at).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=period.starts_at)
    )
    if organization_ids is not None:
        rows = rows.filter(subscription__organization_id__in=list(organization_ids))
    columns = (
        "subscription__organization_id",
        "subscription__organization__name",
        "subscription__organization__slug",
        "subscription__status",
        "subscription__trial_ends_at",
        "subscription__cancelled_at",
        "subscription__plan__max_concurrent_sessions",
        "starts_at",
        "ends_at",
        *(f"plan__{name}" for name in _PLAN_FIELDS),
        *(f"subscription__plan__{name}" for name in _PLAN_FIELDS),
    )
    grouped: dict[int, list[tuple]] = {}
    for row in rows.exclude(subscription__organization__schema_name="public").values_list(*columns):
        grouped.setdefault(row[0], []).append(row)
    terms: dict[tuple, PlanTerms] = {}
    found = []
    for organization_id, history in grouped.items():
        head = history[0]
        plan_of = [terms.setdefault(row[_PLAN_COLUMNS], _terms(*row[_PLAN_COLUMNS])) for row in history]
        segments = cut_segments(
            ((plan, row[7], row[8]) for plan, row in zip(plan_of, history, strict=True)),
            until=period.ends_at,
            trial_ends_at=head[4],
            cancelled_at=head[5],
        )
        found.append(
            Billable(
                organization_id=organization_id,
                name=head[1],
                slug=head[2],
                status=head[3],
                plan=terms.setdefault(head[_CURRENT_PLAN_COLUMNS], _terms(*head[_CURRENT_PLAN_COLUMNS])),
                max_concurrent=head[6],
                segments=tuple(segments),
            )
        )
    return found


# ------------------------------------------------------------------ usage of a period
def rollup_complete_before() -> datetime | None:
    """Every event before this moment is in DailyUsage (as of the last scheduled roll-up)."""
    day = RollupState.objects.filter(name=ROLLUP_STATE).values_list("complete_before", flat=True).first()
    return midnight(day) if day else None


@dataclass(frozen=True, slots=True)
class LiveUsage:
    """One organization's usage over a span: what counts against the plan, what it cost us, how many events."""

    totals: UsageTotals
    cost: Decimal
    events: int


def live_usage(
    start: datetime, end: datetime, organization_ids: Iterable[int] | None = None, *, with_cost: bool = True
) -> dict[int, LiveUsage]:
    """Every page's usage figures, live: the daily roll-up for days known complete, plus the raw events
    since the last roll-up (an index range of a day or two). Each event is counted once: the split is
    ``RollupState.complete_before``, and the roll-up only moves it forward once those days are in.

    ``start`` and ``end`` are cut to whole UTC days on the roll-up side; spans used by the pages are days.
    ``with_cost=False`` (the quota, on every session start): the raw part reads only the
    ``usage_org_time`` index (metric, channel, quantity), and cost stays 0.
    """
    split = rollup_complete_before()
    split = start if split is None else min(max(split, start), end)
    wanted = None if organization_ids is None else list(organization_ids)
    rows: dict[int, list[tuple[str, str, Decimal]]] = {}
    cost: dict[int, Decimal] = {}
    events: dict[int, int] = {}

    def scoped(queryset):  # noqa: ANN001, ANN202 - a QuerySet of either table
        return queryset if wanted is None else queryset.filter(organization_id__in=wanted)

    if split > start:
        rolled = scoped(DailyUsage.objects.filter(day__gte=start.date(), day__lt=split.date()))
        for organization_id, metric, channel, quantity, spent, n in (
            rolled.values_list("organization_id", "metric", "channel")
            .annotate(q=Sum("quantity"), c=Sum("cost"), n=Sum("events"))
            .values_list("organization_id", "metric", "channel", "q", "c", "n")
        ):
            rows.setdefault(organization_id, []).append((metric, channel, quantity))
            cost[organization_id] = cost.get(organization_id, Decimal(0)) + (spent or 0)
            events[organization_id] = events.get(organization_id, 0) + (n or 0)
    if end > split:
        raw = scoped(UsageEvent.objects.filter(occurred_at__gte=split, occurred_at__lt=end))
        spent_sum = Sum("cost") if with_cost else Value(None, output_field=DecimalField())
        for organization_id, metric, channel, quantity, spent, n in (
            raw.values_list("organization_id", "metric", "channel")
            .annotate(q=Sum("quantity"), c=spent_sum, n=Count("*"))
            .values_list("organization_id", "metric", "channel", "q", "c", "n")
        ):
            rows.setdefault(organization_id, []).append((metric, channel, quantity))
            cost[organization_id] = cost.get(organization_id, Decimal(0)) + (spent or 0)
            events[organization_id] = events.get(organization_id, 0) + n
    return {
        organization_id: LiveUsage(
            totals_from_rows(found), cost.get(organization_id, Decimal(0)), events[organization_id]
        )
        for organization_id, found in rows.items()
    }


def period_usage(organization_id: int, period: Period) -> UsageTotals:
    """Usage that counts against the plan, live: complete roll-up days, plus raw events since."""
    found = live_usage(period.starts_at, period.ends_at, [organization_id], with_cost=False).get(organization_id)
    return found.totals if found else UsageTotals()


def _counting() -> dict[str, object]:
    return {"metric__in": [*VOICE_METRICS, *TOKEN_METRICS, *PHONE_METRICS]}


def totals_from_rows(rows: Iterable[tuple[str, str, Decimal]]) -> UsageTotals:
    voice, tokens = Decimal(0), Decimal(0)
    phone = {metric: Decimal(0) for metric in PHONE_METRICS}
    for metric, channel, total in rows:
        if metric in VOICE_METRICS:
            voice += total
        elif metric in TOKEN_METRICS and channel == TEXT_CHANNEL:
            tokens += total
        elif metric in phone:
            phone[metric] += total
    return UsageTotals(
        voice_seconds=voice,
        text_tokens=int(tokens),
        phone_in_seconds=phone[Metric.PHONE_INBOUND_SECONDS],
        phone_out_seconds=phone[Metric.PHONE_OUTBOUND_SECONDS],
    )


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
    return share_of(usage, allowance(segments, period.starts_at, period.ends_at))


def share_of(usage: UsageTotals, included: Allowance) -> Decimal | None:
    shares = []
    if included.minutes > 0:
        shares.append(usage.voice_seconds / 60 / included.minutes)
    if included.text_tokens > 0:
        shares.append(Decimal(usage.text_tokens) / included.text_tokens)
    return max(shares) if shares else None


def used_percent(usage: UsageTotals, segments: list[Segment], period: Period) -> Decimal | None:
    """The share as a percentage with one decimal, for people (never for the cap's decision)."""
    return as_percent(usage_share(usage, segments, period))


def as_percent(share: Decimal | None) -> Decimal | None:
    return None if share is None else (share * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def quota_status(organization_id: int, *, now: datetime | None = None) -> QuotaStatus:
    """Three small indexed queries: the subscription with its history, complete roll-up days, today's events.

    An organization without a subscription (the platform, an internal account) has no limits.
    """
    now = now or timezone.now()
    period = Period.month_of(now)
    found = billables(period, [organization_id])
    if not found:
        if Subscription.objects.filter(organization_id=organization_id).exists():  # no plan in force
            return QuotaStatus(allows_sessions=False, code="subscription_inactive", message=INACTIVE_MESSAGE)
        return QuotaStatus(allows_sessions=True)
    billable = found[0]
    if billable.status == SubscriptionStatus.CANCELLED:
        return QuotaStatus(allows_sessions=False, code="subscription_inactive", message=INACTIVE_MESSAGE)
    usage = period_usage(organization_id, period)
    share = usage_share(usage, list(billable.segments), period)
    hard = billable.plan.hard_cap
    over = hard and share is not None and share >= 1
    return QuotaStatus(
        allows_sessions=not over,
        code="quota_exceeded" if over else "",
        message=QUOTA_MESSAGE if over else "",
        max_concurrent=billable.max_concurrent,
        hard_cap=hard,
        used_percent=used_percent(usage, list(billable.segments), period),
        plan=billable.plan.name,
    )


def earliest_event_at() -> datetime | None:
    return UsageEvent.objects.order_by("occurred_at").values_list("occurred_at", flat=True).first()


def grace_period() -> timedelta:
    return timedelta(days=settings.AURA_BILLING_GRACE_DAYS)


# ------------------------------------------------------------------ usage by day (the API's usage report)
def daily_usage(
    organization_id: int | None, first: date, last: date, metrics: Iterable[str] | None = None
) -> list[tuple[date, str, Decimal]]:
    """(day, metric, quantity) for each day in [first, last] with usage, channels added up, oldest first.

    Complete days come from the daily roll-up; days after the last complete roll-up from the raw events,
    so today's usage shows up at once. ``organization_id`` None: every organization (the staff charts).
    """
    split_at = rollup_complete_before()
    end = last + timedelta(days=1)
    split = min(max(split_at.date() if split_at else first, first), end)
    metric_filter: dict[str, object] = {"metric__in": list(metrics)} if metrics else {}
    if organization_id is not None:
        metric_filter["organization_id"] = organization_id
    found: dict[tuple[date, str], Decimal] = {}
    if split > first:
        rolled = DailyUsage.objects.filter(day__gte=first, day__lt=split, **metric_filter).values_list("day", "metric")
        for day, metric, total in rolled.annotate(total=Sum("quantity")).values_list("day", "metric", "total"):
            found[(day, metric)] = total
    if end > split:
        raw = (
            UsageEvent.objects.filter(
                occurred_at__gte=midnight(split),
                occurred_at__lt=midnight(end),
                **metric_filter,
            )
            .annotate(day=TruncDate("occurred_at", tzinfo=UTC))
            .values_list("day", "metric")
        )
        for day, metric, total in raw.annotate(total=Sum("quantity")).values_list("day", "metric", "total"):
            found[(day, metric)] = found.get((day, metric), Decimal(0)) + total
    return [(day, metric, quantity) for (day, metric), quantity in sorted(found.items())]


# ------------------------------------------------------------------ a plan change, before it is saved
def plan_terms(plan: Plan) -> PlanTerms:
    return _terms(*(getattr(plan, name) for name in _PLAN_FIELDS))


def plan_change_preview(subscription: Subscription, plan: Plan, *, at: datetime | None = None) -> PlanChangePreview:
    """Old and new price and this month's proration of switching ``subscription`` to ``plan`` at ``at``."""
    at = at or timezone.now()
    period = Period.month_of(at)
    in_trial = subscription.status == SubscriptionStatus.TRIAL or (
        subscription.trial_ends_at is not None and subscription.trial_ends_at > at
    )
    return preview_plan_change(
        plan_terms(subscription.plan),
        plan_terms(plan),
        at=at,
        period_start=period.starts_at,
        period_end=period.ends_at,
        in_trial=in_trial,
    )
