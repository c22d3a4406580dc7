"""What the billing pages show, for a chosen period. Every usage figure comes from one live query
(``billing.queries.live_usage``: complete roll-up days plus the raw events since the last roll-up),
so today's events count and none counts twice. A year of usage for 1,000 organizations stays fast
(bench/billing.py): the raw part is at most a day or two of events."""

from __future__ import annotations

import csv
import io
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
    PlanChangeRequest,
    PlanChangeStatus,
    RollupState,
    Subscription,
    SubscriptionStatus,
    UsageAlert,
    UsageEvent,
)
from billing.periods import Period, ReportPeriod, months_between
from billing.pricing import Allowance, Charges, Segment, UsageTotals, allowance_note, clip, compute_charges, whole
from billing.queries import (
    ROLLUP_STATE,
    Billable,
    LiveUsage,
    as_percent,
    billables,
    daily_usage,
    live_usage,
    rollup_complete_before,
    share_of,
)
from tenants.models import Organization

ZERO = Decimal(0)
SIXTY = Decimal(60)
BILLED_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
MONTHS_SHOWN = 12
TRIAL_SOON_DAYS = 7


# ------------------------------------------------------------------ one organization over a period
@dataclass(frozen=True, slots=True)
class OrganizationFigures:
    organization_id: int
    name: str
    slug: str
    plan: str
    status: str
    mrr: Decimal  # the monthly fee it pays at the end of the period (0 in a trial or once cancelled)
    revenue: Decimal  # before tax: fees prorated over the period, overage to date
    cost: Decimal  # what its usage cost us
    voice_minutes: Decimal
    text_tokens: int
    events: int
    used_percent: Decimal | None
    hard_cap: bool
    active_sessions: int = 0

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        return None if not self.revenue else (self.margin / self.revenue * 100).quantize(Decimal("0.1"))

    @property
    def whole_minutes(self) -> int:
        return whole(self.voice_minutes)


def fee_at(segments: tuple[Segment, ...] | list[Segment], moment: datetime) -> Decimal:
    """The monthly fee in force at ``moment``: nothing in a trial, after a cancellation, or without a plan."""
    for segment in segments:
        if segment.start <= moment < segment.end and not segment.trial:
            return segment.terms.monthly_fee
    return ZERO


def _mrr_moment(report: ReportPeriod, now: datetime) -> datetime:
    return min(now, report.ends_at - timedelta(microseconds=1))


def organization_figures(
    report: ReportPeriod,
    organization_ids: list[int] | None = None,
    *,
    now: datetime | None = None,
    sessions: dict[int, int] | None = None,
) -> list[OrganizationFigures]:
    """Each subscribed organization's figures over ``report``.

    Revenue of a period is what the invoices of its months say for the days inside it: each month's
    fees and allowance prorated to the days of the month inside the period, overage on that part's usage.
    A whole month is exactly its invoice (before tax).
    """
    now = now or timezone.now()
    subscriptions = billables(report, organization_ids)
    ids = [b.organization_id for b in subscriptions]
    if not ids:
        return []
    months = months_between(report.start, report.end)
    parts: list[tuple[Period, datetime, datetime, dict[int, LiveUsage]]] = []
    for month in months:
        lo, hi = max(month.starts_at, report.starts_at), min(month.ends_at, report.ends_at)
        parts.append((month, lo, hi, live_usage(lo, hi, ids)))
    whole_span = parts[0][3] if len(parts) == 1 else live_usage(report.starts_at, report.ends_at, ids)
    moment = _mrr_moment(report, now)
    found = []
    for billable in subscriptions:
        revenue, included_minutes, included_tokens = ZERO, ZERO, ZERO
        for month, lo, hi, usage in parts:
            inside = clip(billable.segments, lo, hi)
            totals = usage[billable.organization_id].totals if billable.organization_id in usage else UsageTotals()
            charges = compute_charges(inside, totals, start=month.starts_at, end=month.ends_at, tax_rate=ZERO)
            revenue += charges.subtotal
            included_minutes += charges.allowance.minutes
            included_tokens += charges.allowance.text_tokens
        usage = whole_span.get(billable.organization_id)
        totals = usage.totals if usage else UsageTotals()
        found.append(
            OrganizationFigures(
                organization_id=billable.organization_id,
                name=billable.name,
                slug=billable.slug,
                plan=billable.plan.name,
                status=SubscriptionStatus(billable.status).label,
                mrr=fee_at(billable.segments, moment),
                revenue=revenue,
                cost=usage.cost if usage else ZERO,
                voice_minutes=totals.voice_seconds / SIXTY,
                text_tokens=totals.text_tokens,
                events=usage.events if usage else 0,
                used_percent=as_percent(_share(totals, included_minutes, included_tokens)),
                hard_cap=billable.plan.hard_cap,
                active_sessions=(sessions or {}).get(billable.organization_id, 0),
            )
        )
    return found


def _share(totals: UsageTotals, minutes: Decimal, tokens: Decimal) -> Decimal | None:
    return share_of(totals, Allowance(minutes, tokens))


# ------------------------------------------------------------------ the staff overview
@dataclass(frozen=True, slots=True)
class Totals:
    mrr: Decimal
    paying: int
    revenue: Decimal
    cost: Decimal
    voice_minutes: Decimal
    churned: int

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def arpa(self) -> Decimal | None:
        """Average revenue per paying account: MRR over the organizations paying a fee."""
        return (self.mrr / self.paying).quantize(Decimal("0.01")) if self.paying else None


def _totals(figures: list[OrganizationFigures], churned: int) -> Totals:
    return Totals(
        mrr=sum((f.mrr for f in figures), ZERO),
        paying=sum(1 for f in figures if f.mrr > 0),
        revenue=sum((f.revenue for f in figures), ZERO),
        cost=sum((f.cost for f in figures), ZERO),
        voice_minutes=sum((f.voice_minutes for f in figures), ZERO),
        churned=churned,
    )


def trend(now_value: Decimal | int | None, before: Decimal | int | None) -> str:
    """ "+12.5 %" against the previous period; "new" from nothing; "" when neither has a value."""
    if now_value is None or before is None:
        return ""
    if before == 0:
        return "" if now_value == 0 else "new"
    change = (Decimal(now_value) - Decimal(before)) / abs(Decimal(before)) * 100
    return f"{change:+.1f} %"


@dataclass
class PlatformOverview:
    report: ReportPeriod
    previous: ReportPeriod
    totals: Totals
    before: Totals
    organizations: list[OrganizationFigures]
    unsubscribed: int
    active_sessions: int | None  # None: Redis unavailable
    trials_ending: list[Subscription]
    churned: list[Subscription]
    pending_requests: list[PlanChangeRequest]
    invoices: list[dict[str, object]]
    daily: dict[str, list[tuple[date, Decimal]]]
    monthly: list[tuple[date, Decimal, Decimal]]  # month, revenue before tax, provider cost
    unpriced_events: int
    rollup_at: datetime | None
    live_since: datetime | None  # raw events from here on are counted as they arrive
    notes: list[str] = field(default_factory=list)

    @property
    def margin_percent(self) -> Decimal | None:
        t = self.totals
        return None if not t.revenue else (t.margin / t.revenue * 100).quantize(Decimal("0.1"))

    def trends(self) -> dict[str, str]:
        t, b = self.totals, self.before
        return {
            "mrr": trend(t.mrr, b.mrr),
            "arpa": trend(t.arpa, b.arpa),
            "revenue": trend(t.revenue, b.revenue),
            "cost": trend(t.cost, b.cost),
            "margin": trend(t.margin, b.margin),
            "minutes": trend(t.voice_minutes, b.voice_minutes),
            "paying": trend(t.paying, b.paying),
            "churned": trend(t.churned, b.churned),
        }

    def top(self, n: int = 10) -> list[OrganizationFigures]:
        return sorted(self.organizations, key=lambda o: o.revenue, reverse=True)[:n]

    def near_cap(self) -> list[OrganizationFigures]:
        near = [o for o in self.organizations if o.used_percent is not None and o.used_percent >= 80]
        return sorted(near, key=lambda o: o.used_percent, reverse=True)


def _active_sessions() -> dict[int, int] | None:
    from billing.sessions import active_sessions_by_organization

    try:
        return dict(active_sessions_by_organization())
    except RedisError:
        return None


def churned_in(report: ReportPeriod) -> list[Subscription]:
    """Subscriptions cancelled during the period (the organization stopped paying)."""
    return list(
        Subscription.objects.filter(cancelled_at__gte=report.starts_at, cancelled_at__lt=report.ends_at)
        .select_related("organization", "plan")
        .order_by("-cancelled_at")
    )


def trials_ending(now: datetime, days: int = TRIAL_SOON_DAYS) -> list[Subscription]:
    return list(
        Subscription.objects.filter(
            status=SubscriptionStatus.TRIAL, trial_ends_at__gte=now, trial_ends_at__lt=now + timedelta(days=days)
        )
        .select_related("organization", "plan")
        .order_by("trial_ends_at")
    )


def platform_overview(report: ReportPeriod | None = None, *, now: datetime | None = None) -> PlatformOverview:
    now = now or timezone.now()
    report = report or ReportPeriod.parse({}, now.date())
    previous = report.previous()
    sessions = _active_sessions()
    organizations = organization_figures(report, now=now, sessions=sessions)
    before_figures = organization_figures(previous, now=now)
    churned = churned_in(report)
    totals = _totals(organizations, len(churned))
    before = _totals(before_figures, len(churned_in(previous)))
    subscribed = {o.organization_id for o in organizations}
    unsubscribed = Organization.objects.filter(is_ready=True).exclude(schema_name="public").count() - len(subscribed)
    state = RollupState.objects.filter(name=ROLLUP_STATE).first()
    this_month = ReportPeriod.parse({}, now.date())
    current = totals if report == this_month else _totals(organization_figures(this_month, now=now), 0)
    overview = PlatformOverview(
        report=report,
        previous=previous,
        totals=totals,
        before=before,
        organizations=organizations,
        unsubscribed=max(unsubscribed, 0),
        active_sessions=None if sessions is None else sum(sessions.values()),
        trials_ending=trials_ending(now),
        churned=churned,
        pending_requests=list(
            PlanChangeRequest.objects.filter(status=PlanChangeStatus.PENDING).select_related("organization", "plan")
        ),
        invoices=invoice_summary(),
        daily=daily_usage_by_metric(report.start, report.last_day),
        monthly=monthly_revenue_and_cost(
            Period.month_of(now), MONTHS_SHOWN, current_revenue=current.revenue, current_cost=current.cost
        ),
        unpriced_events=DailyUsage.objects.filter(day__gte=report.start, day__lt=report.end).aggregate(
            n=Sum("unpriced_events")
        )["n"]
        or 0,
        rollup_at=state.last_run_at if state else None,
        live_since=rollup_complete_before(),
    )
    if sessions is None:
        overview.notes.append("Redis is unavailable: active sessions are not shown.")
    return overview


def invoice_summary() -> list[dict[str, object]]:
    rows = {row["status"]: row for row in Invoice.objects.values("status").annotate(n=Count("id"), total=Sum("total"))}
    return [
        {
            "key": status,
            "status": label,
            "n": rows.get(status, {}).get("n", 0),
            "total": rows.get(status, {}).get("total") or ZERO,
        }
        for status, label in InvoiceStatus.choices
    ]


def daily_usage_by_metric(first: date, last: date, organization_id: int | None = None) -> dict[str, list]:
    """{metric label: [(day, quantity), …]} for every day in [first, last], zeros included; live."""
    found: dict[str, dict[date, Decimal]] = {}
    for day, metric, quantity in daily_usage(organization_id, first, last):
        found.setdefault(metric, {})[day] = quantity
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {
        Metric(metric).label: [(day, found[metric].get(day, ZERO)) for day in days]
        for metric in Metric.values
        if metric in found
    }


def monthly_revenue_and_cost(
    current: Period, months: int, *, current_revenue: Decimal, current_cost: Decimal
) -> list[tuple[date, Decimal, Decimal]]:
    """For the last ``months`` months (oldest first): revenue before tax (invoiced; for the current
    month, what its invoices will say so far) and provider cost (the current month's: live)."""
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
    cost[current.start] = current_cost
    return [(p.start, revenue.get(p.start) or ZERO, cost.get(p.start) or ZERO) for p in periods]


# ------------------------------------------------------------------ drill-down: one organization
@dataclass
class OrganizationUsage:
    organization: Organization
    report: ReportPeriod
    figures: OrganizationFigures | None
    by_metric: list[tuple[str, str, Decimal, Decimal, int]]  # metric, label, quantity, cost, events
    daily: dict[str, list[tuple[date, Decimal]]]


def usage_by_metric(
    organization_id: int, start: datetime, end: datetime
) -> list[tuple[str, str, Decimal, Decimal, int]]:
    """Each metric's quantity, cost and events over [start, end): roll-up days plus raw events since."""
    split = rollup_complete_before()
    split = start if split is None else min(max(split, start), end)
    found: dict[str, list] = {}
    if split > start:
        for metric, q, c, n in (
            DailyUsage.objects.filter(organization_id=organization_id, day__gte=start.date(), day__lt=split.date())
            .values_list("metric")
            .annotate(q=Sum("quantity"), c=Sum("cost"), n=Sum("events"))
            .values_list("metric", "q", "c", "n")
        ):
            found[metric] = [q, c or ZERO, n]
    if end > split:
        for metric, q, c, n in (
            UsageEvent.objects.filter(organization_id=organization_id, occurred_at__gte=split, occurred_at__lt=end)
            .values_list("metric")
            .annotate(q=Sum("quantity"), c=Sum("cost"), n=Count("id"))
            .values_list("metric", "q", "c", "n")
        ):
            row = found.setdefault(metric, [ZERO, ZERO, 0])
            row[0] += q
            row[1] += c or ZERO
            row[2] += n
    return [(m, Metric(m).label, *found[m]) for m in Metric.values if m in found]


def organization_usage(
    organization: Organization, report: ReportPeriod, *, now: datetime | None = None
) -> OrganizationUsage:
    figures = organization_figures(report, [organization.pk], now=now)
    return OrganizationUsage(
        organization=organization,
        report=report,
        figures=figures[0] if figures else None,
        by_metric=usage_by_metric(organization.pk, report.starts_at, report.ends_at),
        daily=daily_usage_by_metric(report.start, report.last_day, organization.pk),
    )


# ------------------------------------------------------------------ CSV export
CSV_HEADER = (
    "organization",
    "slug",
    "plan",
    "status",
    "period_start",
    "period_end",
    "currency",
    "mrr",
    "revenue_before_tax",
    "provider_cost",
    "margin",
    "voice_minutes",
    "text_tokens",
    "usage_events",
    "used_percent",
)


def _cell(value: object) -> str:
    """A spreadsheet must not run a cell as a formula: text starting with = + - @ (or a tab/CR) gets a quote."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def overview_csv(overview: PlatformOverview) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    report = overview.report
    for o in sorted(overview.organizations, key=lambda o: o.name.lower()):
        writer.writerow(
            [
                _cell(o.name),
                _cell(o.slug),
                _cell(o.plan),
                o.status,
                report.start.isoformat(),
                report.last_day.isoformat(),
                settings.AURA_BILLING_CURRENCY,
                f"{o.mrr:.2f}",
                f"{o.revenue:.2f}",
                f"{o.cost:.2f}",
                f"{o.margin:.2f}",
                f"{o.voice_minutes:.3f}",
                o.text_tokens,
                o.events,
                "" if o.used_percent is None else o.used_percent,
            ]
        )
    return out.getvalue()


# ------------------------------------------------------------------ one organization (its admins' page)
@dataclass
class TenantOverview:
    subscription: Subscription | None
    period: Period
    usage: UsageTotals
    events: int
    charges: Charges | None
    used_percent: Decimal | None
    allowance_note: str
    daily: dict[str, list[tuple[date, Decimal]]]
    invoices: list[Invoice]
    alerts: list[UsageAlert]
    requests: list[PlanChangeRequest]
    currency: str

    @property
    def used_minutes(self) -> Decimal:
        return self.usage.voice_seconds / SIXTY

    @property
    def included_minutes(self) -> int | None:
        return None if self.charges is None else whole(self.charges.allowance.minutes)

    @property
    def has_usage(self) -> bool:
        return self.events > 0


def tenant_overview(organization: Organization, *, now: datetime | None = None) -> TenantOverview:
    """The organization's own numbers only: every query here filters on its id."""
    now = now or timezone.now()
    period = Period.month_of(now)
    subscription = Subscription.objects.select_related("plan").filter(organization=organization).first()
    billable: Billable | None = next(iter(billables(period, [organization.pk])), None)
    live = live_usage(period.starts_at, period.ends_at, [organization.pk]).get(organization.pk)
    usage = live.totals if live else UsageTotals()
    charges = percent = None
    note = ""
    if billable is not None:
        segments = list(billable.segments)
        charges = compute_charges(
            segments, usage, start=period.starts_at, end=period.ends_at, tax_rate=settings.AURA_BILLING_TAX_RATE
        )
        percent = as_percent(share_of(usage, charges.allowance))
        note = allowance_note(segments, period.starts_at, period.ends_at, plan_minutes=billable.plan.included_minutes)
    return TenantOverview(
        subscription=subscription,
        period=period,
        usage=usage,
        events=live.events if live else 0,
        charges=charges,
        used_percent=percent,
        allowance_note=note,
        daily=daily_usage_by_metric(period.start, now.date(), organization.pk),
        invoices=list(Invoice.objects.filter(organization=organization).order_by("-period_start")[:24]),
        alerts=list(UsageAlert.objects.filter(organization=organization, period_start=period.start)),
        requests=list(PlanChangeRequest.objects.filter(organization=organization).select_related("plan")[:5]),
        currency=settings.AURA_BILLING_CURRENCY,
    )


def day_label(day: date) -> str:
    return f"{day:%d %b}"
