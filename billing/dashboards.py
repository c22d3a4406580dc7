"""What the billing pages show. Reads roll-ups (MonthlyUsage, DailyUsage) and small tables, never raw
events in bulk: a year of usage for 1,000 organizations stays fast (bench/billing.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone
from redis.exceptions import RedisError

from billing.models import (
    DailyUsage,
    Invoice,
    InvoiceStatus,
    Metric,
    MonthlyUsage,
    RollupState,
    Subscription,
    SubscriptionStatus,
    UsageAlert,
)
from billing.periods import Period
from billing.pricing import Charges, UsageTotals, compute_charges
from billing.queries import (
    ROLLUP_STATE,
    as_percent,
    billables,
    period_usage,
    rolled_up_costs,
    rolled_up_totals,
    share_of,
    used_percent,
)
from tenants.models import Organization

ZERO = Decimal(0)
BILLED_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
DAYS_SHOWN = 30
MONTHS_SHOWN = 12


@dataclass(frozen=True, slots=True)
class OrganizationMonth:
    organization_id: int
    name: str
    slug: str
    plan: str
    status: str
    revenue: Decimal  # before tax
    cost: Decimal
    used_percent: Decimal | None
    hard_cap: bool
    active_sessions: int

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        return None if not self.revenue else (self.margin / self.revenue * 100).quantize(Decimal("0.1"))


@dataclass
class PlatformOverview:
    period: Period
    mrr: Decimal
    revenue: Decimal
    cost: Decimal
    organizations: list[OrganizationMonth]
    unsubscribed: int
    active_sessions: int | None  # None: Redis unavailable
    invoices: list[dict[str, object]]
    daily: dict[str, list[tuple[date, Decimal]]]
    monthly: list[tuple[date, Decimal, Decimal]]  # month, invoiced revenue, provider cost
    unpriced_events: int
    rollup_at: datetime | None
    notes: list[str] = field(default_factory=list)

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        return None if not self.revenue else (self.margin / self.revenue * 100).quantize(Decimal("0.1"))

    def top(self, n: int = 10) -> list[OrganizationMonth]:
        return sorted(self.organizations, key=lambda o: o.revenue, reverse=True)[:n]

    def near_cap(self) -> list[OrganizationMonth]:
        near = [o for o in self.organizations if o.used_percent is not None and o.used_percent >= 80]
        return sorted(near, key=lambda o: o.used_percent, reverse=True)


def _active_sessions() -> dict[int, int] | None:
    from billing.sessions import active_sessions_by_organization

    try:
        return dict(active_sessions_by_organization())
    except RedisError:
        return None


def platform_overview(*, now: datetime | None = None) -> PlatformOverview:
    now = now or timezone.now()
    period = Period.month_of(now)
    subscriptions = billables(period)
    usage = rolled_up_totals(period)
    costs = rolled_up_costs(period)
    sessions = _active_sessions()
    organizations = []
    mrr = ZERO
    for billable in subscriptions:
        segments = list(billable.segments)
        totals = usage.get(billable.organization_id, UsageTotals())
        charges = compute_charges(segments, totals, start=period.starts_at, end=period.ends_at, tax_rate=ZERO)
        if billable.status in BILLED_STATUSES:
            mrr += billable.plan.monthly_fee
        organizations.append(
            OrganizationMonth(
                organization_id=billable.organization_id,
                name=billable.name,
                slug=billable.slug,
                plan=billable.plan.name,
                status=SubscriptionStatus(billable.status).label,
                revenue=charges.subtotal,
                cost=costs.get(billable.organization_id) or ZERO,
                used_percent=as_percent(share_of(totals, charges.allowance)),
                hard_cap=billable.plan.hard_cap,
                active_sessions=(sessions or {}).get(billable.organization_id, 0),
            )
        )
    subscribed = {o.organization_id for o in organizations}
    unsubscribed = Organization.objects.filter(is_ready=True).exclude(schema_name="public").count() - len(subscribed)
    revenue = sum((o.revenue for o in organizations), ZERO)
    state = RollupState.objects.filter(name=ROLLUP_STATE).first()
    first_day = (now - timedelta(days=DAYS_SHOWN - 1)).date()
    overview = PlatformOverview(
        period=period,
        mrr=mrr,
        revenue=revenue,
        cost=sum(costs.values(), ZERO),
        organizations=organizations,
        unsubscribed=unsubscribed,
        active_sessions=None if sessions is None else sum(sessions.values()),
        invoices=invoice_summary(),
        daily=daily_usage_by_metric(first_day, now.date()),
        monthly=monthly_revenue_and_cost(period, MONTHS_SHOWN, current_revenue=revenue),
        unpriced_events=DailyUsage.objects.filter(day__gte=first_day).aggregate(n=Sum("unpriced_events"))["n"] or 0,
        rollup_at=state.last_run_at if state else None,
    )
    if sessions is None:
        overview.notes.append("Redis is unavailable: active sessions are not shown.")
    return overview


def invoice_summary() -> list[dict[str, object]]:
    rows = {row["status"]: row for row in Invoice.objects.values("status").annotate(n=Count("id"), total=Sum("total"))}
    return [
        {"status": label, "n": rows.get(status, {}).get("n", 0), "total": rows.get(status, {}).get("total") or ZERO}
        for status, label in InvoiceStatus.choices
    ]


def daily_usage_by_metric(first: date, last: date, organization_id: int | None = None) -> dict[str, list]:
    """{metric label: [(day, quantity), …]} for every day in [first, last], zeros included."""
    queryset = DailyUsage.objects.filter(day__gte=first, day__lte=last)
    if organization_id is not None:
        queryset = queryset.filter(organization_id=organization_id)
    found: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for day, metric, quantity in (
        queryset.values_list("day", "metric").annotate(q=Sum("quantity")).values_list("day", "metric", "q")
    ):
        found[metric][day] = quantity
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {
        Metric(metric).label: [(day, found[metric].get(day, ZERO)) for day in days]
        for metric in Metric.values
        if metric in found
    }


def monthly_revenue_and_cost(
    current: Period, months: int, *, current_revenue: Decimal
) -> list[tuple[date, Decimal, Decimal]]:
    """For the last ``months`` months (oldest first): revenue before tax (invoiced; for the current
    month, what its invoices will say so far) and provider cost."""
    periods = [current]
    while len(periods) < months:
        periods.insert(0, periods[0].previous())
    first = periods[0].start
    revenue = dict(
        Invoice.objects.filter(period_start__gte=first)
        .exclude(status=InvoiceStatus.VOID)
        .values_list("period_start")
        .annotate(total=Sum("subtotal"))
        .values_list("period_start", "total")
    )
    cost = dict(
        MonthlyUsage.objects.filter(month__gte=first)
        .values_list("month")
        .annotate(total=Sum("cost"))
        .values_list("month", "total")
    )
    revenue[current.start] = current_revenue
    return [(p.start, revenue.get(p.start) or ZERO, cost.get(p.start) or ZERO) for p in periods]


# ------------------------------------------------------------------ one organization (its admins' page)
@dataclass
class TenantOverview:
    subscription: Subscription | None
    period: Period
    usage: UsageTotals
    charges: Charges | None
    used_percent: Decimal | None
    daily: dict[str, list[tuple[date, Decimal]]]
    invoices: list[Invoice]
    alerts: list[UsageAlert]
    currency: str


def tenant_overview(organization: Organization, *, now: datetime | None = None) -> TenantOverview:
    """The organization's own numbers only: every query here filters on its id."""
    now = now or timezone.now()
    period = Period.month_of(now)
    subscription = Subscription.objects.select_related("plan").filter(organization=organization).first()
    billable = next(iter(billables(period, [organization.pk])), None)
    usage = period_usage(organization.pk, period)
    charges = percent = None
    if billable is not None:
        segments = list(billable.segments)
        charges = compute_charges(
            segments, usage, start=period.starts_at, end=period.ends_at, tax_rate=settings.AURA_BILLING_TAX_RATE
        )
        percent = used_percent(usage, segments, period)
    return TenantOverview(
        subscription=subscription,
        period=period,
        usage=usage,
        charges=charges,
        used_percent=percent,
        daily=daily_usage_by_metric(period.start, now.date(), organization.pk),
        invoices=list(Invoice.objects.filter(organization=organization).order_by("-period_start")[:24]),
        alerts=list(UsageAlert.objects.filter(organization=organization, period_start=period.start)),
        currency=settings.AURA_BILLING_CURRENCY,
    )


def day_label(day: date) -> str:
    return f"{day:%d %b}"
