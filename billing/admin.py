"""Billing in the two admins.

Platform staff (public admin, staff only): the price list, plans, subscriptions, usage, invoices,
alerts, and two dashboards (billing overview, margin by organization).
Tenant admins: one page with their usage this month against the plan, their plan and their
invoices (printable). Billing rows live in the public schema; every tenant view filters on
``request.tenant``, so an organization's admins only ever see its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from billing import actions
from billing.charts import bar_chart, meter
from billing.dashboards import (
    OrganizationFigures,
    day_label,
    organization_figures,
    organization_usage,
    overview_csv,
    platform_overview,
    tenant_overview,
)
from billing.models import (
    DailyUsage,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Plan,
    PlanChangeRequest,
    PlanChangeStatus,
    PlanPeriod,
    ProviderPrice,
    Subscription,
    SubscriptionStatus,
    UsageAlert,
    UsageEvent,
)
from billing.periods import REPORT_CHOICES, ReportPeriod
from billing.queries import plan_change_preview
from billing.templatetags.billing_format import format_money
from core.admin_sites import StaffPage, platform_admin, tenant_admin
from tenants.hosts import origin_of
from tenants.models import Organization
from tenants.queries import admins_of, tenant_url


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# ================================================================== platform staff: data
@admin.register(ProviderPrice, site=platform_admin)
class ProviderPriceAdmin(admin.ModelAdmin):
    list_display = ("provider", "model", "metric", "price", "per_quantity", "effective_from", "note")
    list_filter = ("provider", "metric")
    search_fields = ("provider", "model")
    date_hierarchy = "effective_from"

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # history: add a newer price instead

    def save_model(self, request: HttpRequest, obj: ProviderPrice, form: ModelForm, change: bool) -> None:
        before = ProviderPrice.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        # Events from the earlier of the old and new start on may now have another price in force.
        for key in {(p.provider, p.model, p.metric, p.effective_from) for p in (before, obj) if p is not None}:
            provider, model, metric, since = key
            repriced = actions.do_reprice_usage(provider=provider, model=model, metric=metric, since=since)
            if repriced:
                messages.info(request, f"{repriced} recorded usage events were repriced and their roll-ups recomputed.")


PRICED_PLAN_FIELDS = (
    "slug",
    "monthly_fee",
    "included_minutes",
    "overage_per_minute",
    "included_text_tokens",
    "overage_per_1k_tokens",
    "cap",
    "phone_inbound_per_minute",
    "phone_outbound_per_minute",
)


@admin.register(Plan, site=platform_admin)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "monthly_fee",
        "included_minutes",
        "overage_per_minute",
        "included_text_tokens",
        "overage_per_1k_tokens",
        "max_concurrent_sessions",
        "cap",
        "is_active",
    )

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # subscriptions and invoices refer to it: retire it with "active" instead

    def get_readonly_fields(self, request: HttpRequest, obj: Plan | None = None) -> tuple[str, ...]:
        """A plan someone subscribed to keeps its prices: invoices read them, and a customer must not
        find a month repriced. To change prices, add a new plan and move subscriptions to it."""
        if obj is not None and PlanPeriod.objects.filter(plan=obj).exists():
            return PRICED_PLAN_FIELDS
        return ()


class PlanPeriodInline(admin.TabularInline):
    model = PlanPeriod
    extra = 0
    can_delete = False
    readonly_fields = ("plan", "starts_at", "ends_at")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Subscription, site=platform_admin)
class SubscriptionAdmin(admin.ModelAdmin):
    """Changing the plan goes through a confirm page (price and proration first) and
    ``billing.actions.do_change_plan``; the status through ``do_set_subscription_status``."""

    list_display = ("organization", "plan", "status", "started_at", "trial_ends_at", "cancelled_at")
    list_filter = ("status", "plan")
    search_fields = ("organization__name", "organization__slug")
    inlines = [PlanPeriodInline]
    readonly_fields = ("started_at", "cancelled_at", "updated_at", "change_plan_link")
    list_select_related = ("organization", "plan")

    def get_fields(self, request: HttpRequest, obj: Subscription | None = None) -> list[str]:
        if obj is None:
            return ["organization", "plan"]
        return [
            "organization",
            "change_plan_link",
            "status",
            "trial_ends_at",
            "started_at",
            "cancelled_at",
            "updated_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Subscription | None = None) -> tuple[str, ...]:
        return self.readonly_fields + (("organization",) if obj else ())

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # cancel instead: the history is what invoices are computed from

    def save_model(self, request: HttpRequest, obj: Subscription, form: ModelForm, change: bool) -> None:
        if not change:
            created = actions.do_subscribe(obj.organization, plan=obj.plan)
            obj.pk = created.pk
            return
        before = Subscription.objects.get(pk=obj.pk)
        try:
            if obj.status != before.status:
                actions.do_set_subscription_status(before, obj.status)
            if obj.trial_ends_at != before.trial_ends_at:
                Subscription.objects.filter(pk=obj.pk).update(trial_ends_at=obj.trial_ends_at)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))

    @admin.display(description="Plan")
    def change_plan_link(self, obj: Subscription) -> str:
        url = reverse("platform_admin:billing_subscription_change_plan", args=[obj.pk])
        return format_html(
            '{} ({}/month) · <a href="{}" id="change-plan">Change plan…</a>',
            obj.plan.name,
            format_money(obj.plan.monthly_fee),
            url,
        )

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.change_plan_view)
        return [path("<int:pk>/change-plan/", view, name="billing_subscription_change_plan"), *super().get_urls()]

    def change_plan_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Choose a plan, see its price and this month's proration, confirm. Nothing is saved before."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        subscription = get_object_or_404(Subscription.objects.select_related("organization", "plan"), pk=pk)
        form = ChangePlanForm(request.POST or None, subscription=subscription)
        preview = None
        if request.method == "POST" and form.is_valid():
            plan = form.cleaned_data["plan"]
            if request.POST.get("confirm") == "yes":
                try:
                    actions.do_change_plan(subscription, plan)
                except ValidationError as exc:
                    messages.error(request, " ".join(exc.messages))
                else:
                    messages.success(request, f"{subscription.organization} is now on {plan.name}.")
                    return redirect(reverse("platform_admin:billing_subscription_change", args=[pk]))
            else:
                preview = plan_change_preview(subscription, plan)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change the plan of {subscription.organization}",
            "subscription": subscription,
            "form": form,
            "preview": preview,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/billing/change_plan.html", context)


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.none(), empty_label=None)

    def __init__(self, *args: Any, subscription: Subscription, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subscription = subscription
        self.fields["plan"].queryset = Plan.objects.filter(is_active=True).exclude(pk=subscription.plan_id)
        self.fields["plan"].label_from_instance = lambda plan: (
            f"{plan.name} — {format_money(plan.monthly_fee)}/month, {plan.included_minutes:,} minutes"
        )


@admin.register(PlanChangeRequest, site=platform_admin)
class PlanChangeRequestAdmin(ReadOnlyAdmin):
    """Tenants' requests for a plan that is not self-service: approve (the plan changes now) or decline."""

    list_display = ("organization", "plan", "status", "requested_by", "requested_at", "decided_by", "decided_at")
    list_filter = ("status",)
    list_select_related = ("organization", "plan")
    actions = ["approve", "decline"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and request.user.is_staff  # the actions; the rows themselves are read-only

    def _decide(self, request: HttpRequest, queryset: QuerySet[PlanChangeRequest], approve: bool) -> None:
        for change in queryset:
            try:
                actions.do_decide_plan_change(change, approve=approve, decided_by=request.user.get_username())
            except ValidationError as exc:
                messages.error(request, f"{change.organization}: {' '.join(exc.messages)}")
            else:
                messages.success(
                    request, f"{change.organization}: {'moved to' if approve else 'declined'} {change.plan}."
                )

    @admin.action(description="Approve: change their plan now")
    def approve(self, request: HttpRequest, queryset: QuerySet[PlanChangeRequest]) -> None:
        self._decide(request, queryset, True)

    @admin.action(description="Decline the selected requests")
    def decline(self, request: HttpRequest, queryset: QuerySet[PlanChangeRequest]) -> None:
        self._decide(request, queryset, False)


@admin.register(UsageEvent, site=platform_admin)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "organization", "metric", "quantity", "channel", "provider", "model", "cost")
    list_filter = ("metric", "channel", "provider")
    search_fields = ("idempotency_key", "model")
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at",)
    show_full_result_count = False  # a count(*) over every event on each page is the slow part
    list_select_related = ("organization",)


@admin.register(DailyUsage, site=platform_admin)
class DailyUsageAdmin(ReadOnlyAdmin):
    list_display = ("day", "organization", "metric", "channel", "quantity", "cost", "events", "unpriced_events")
    list_filter = ("metric", "channel")
    date_hierarchy = "day"
    ordering = ("-day", "organization__name", "metric")
    show_full_result_count = False
    list_select_related = ("organization",)


@admin.register(UsageAlert, site=platform_admin)
class UsageAlertAdmin(ReadOnlyAdmin):
    list_display = ("organization", "period_start", "threshold", "used_percent", "created_at", "sent_at", "recipients")
    list_filter = ("threshold",)


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ("description", "quantity", "unit", "unit_price", "amount")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _print_link(url: str) -> str:
    return format_html('<a href="{}" target="_blank">Print</a>', url)


@admin.register(Invoice, site=platform_admin)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ("number", "organization", "period_start", "status", "total", "provider_cost", "print_link")
    list_filter = ("status", "period_start")
    search_fields = ("number", "organization__name")
    inlines = [InvoiceLineInline]
    actions = ["mark_paid", "mark_void"]
    list_select_related = ("organization",)

    def get_readonly_fields(self, request: HttpRequest, obj: Invoice | None = None) -> list[str]:
        return [
            "number",
            "organization",
            "period_start",
            "period_end",
            "status",
            "currency",
            "plan_name",
            "subtotal",
            "tax_rate",
            "tax",
            "total",
            "provider_cost",
            "computed_at",
            "finalized_at",
            "paid_at",
            "print_link",
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the invoice job drafts them

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="")
    def print_link(self, obj: Invoice) -> str:
        return _print_link(reverse("platform_admin:billing_invoice_print", args=[obj.pk]))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.print_view)
        return [path("<int:pk>/print/", view, name="billing_invoice_print"), *super().get_urls()]

    def print_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return _invoice_page(request, get_object_or_404(Invoice.objects.select_related("organization"), pk=pk))

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Invoice], status: str) -> None:
        done = 0
        for invoice in queryset:
            try:
                actions.do_set_invoice_status(invoice, status)
                done += 1
            except ValidationError as exc:
                messages.error(request, f"{invoice.number}: {' '.join(exc.messages)}")
        if done:
            messages.success(request, f"{done} invoice(s) marked {status}.")

    @admin.action(description="Mark the selected finalized invoices paid")
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._set_status(request, queryset, InvoiceStatus.PAID)

    @admin.action(description="Void the selected finalized invoices")
    def mark_void(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._set_status(request, queryset, InvoiceStatus.VOID)


def _invoice_page(request: HttpRequest, invoice: Invoice) -> HttpResponse:
    context = {
        "invoice": invoice,
        "lines": list(invoice.lines.all()),
        "issuer": settings.AURA_PLATFORM_URL,
        "title": f"Invoice {invoice.number}",
    }
    return TemplateResponse(request, "admin/billing/invoice_print.html", context)


# ================================================================== platform staff: dashboards
def _report(request: HttpRequest) -> ReportPeriod:
    try:
        return ReportPeriod.parse(request.GET.dict(), timezone.now().date())
    except ValueError as exc:
        raise Http404(f"Unknown period: {exc}. Use this_month, last_month, 30d, 90d or custom with from/to.") from exc


def _charts(daily: dict[str, list]) -> list[SafeString]:
    return [
        bar_chart([day_label(day) for day, _ in points], {label: [q for _, q in points]}, title=f"{label} per day")
        for label, points in daily.items()
    ]


def billing_dashboard(request: HttpRequest) -> HttpResponse:
    report = _report(request)
    overview = platform_overview(report)
    if request.GET.get("format") == "csv":
        response = HttpResponse(overview_csv(overview), content_type="text/csv; charset=utf-8")
        name = f"aura-billing-{report.start:%Y%m%d}-{report.last_day:%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    currency = settings.AURA_BILLING_CURRENCY
    monthly_chart = bar_chart(
        [f"{month:%b %y}" for month, _, _ in overview.monthly],
        {
            "Revenue before tax (this month: so far)": [revenue for _, revenue, _ in overview.monthly],
            "Provider cost": [cost for _, _, cost in overview.monthly],
        },
        title=f"Revenue and provider cost by month ({currency})",
        unit=currency,
    )
    context = {
        **platform_admin.each_context(request),
        "title": "Billing overview",
        "o": overview,
        "t": overview.totals,
        "b": overview.before,
        "trends": overview.trends(),
        "q": report.query(),
        "choices": REPORT_CHOICES,
        "currency": currency,
        "daily_charts": _charts(overview.daily),
        "monthly_chart": monthly_chart,
        "top": overview.top(10),
        "lowest_margin": sorted(overview.organizations, key=lambda o: o.margin)[:10],
        "near_cap": [(org, meter(org.used_percent)) for org in overview.near_cap()[:50]],
        "busiest": sorted(
            (o for o in overview.organizations if o.active_sessions), key=lambda o: o.active_sessions, reverse=True
        )[:10],
    }
    return TemplateResponse(request, "admin/billing/dashboard.html", context)


SORTS = {
    "margin": lambda o: o.margin,
    "revenue": lambda o: -o.revenue,
    "cost": lambda o: -o.cost,
    "usage": lambda o: -(o.used_percent or 0),
    "mrr": lambda o: -o.mrr,
    "name": lambda o: o.name.lower(),
}


def billing_organizations(request: HttpRequest) -> HttpResponse:
    sort = request.GET.get("sort", "margin")
    if sort not in SORTS:
        raise Http404(f"Unknown sort “{sort}”; use one of {', '.join(SORTS)}.")
    report = _report(request)
    rows = organization_figures(report)
    status = request.GET.get("status")
    if status:
        rows = [row for row in rows if row.status == status or (status == "paying" and row.mrr > 0)]
    context = {
        **platform_admin.each_context(request),
        "title": "Margin by organization",
        "report": report,
        "q": report.query(),
        "rows": sorted(rows, key=SORTS[sort]),
        "sort": sort,
        "sorts": list(SORTS),
        "status": status or "",
        "currency": settings.AURA_BILLING_CURRENCY,
    }
    return TemplateResponse(request, "admin/billing/organizations.html", context)


def billing_organization(request: HttpRequest, pk: int) -> HttpResponse:
    """Drill-down: what makes up one organization's figures over the period (usage by metric, by day)."""
    organization = get_object_or_404(Organization.objects.exclude(schema_name="public"), pk=pk)
    report = _report(request)
    usage = organization_usage(organization, report)
    subscription = Subscription.objects.select_related("plan").filter(organization=organization).first()
    events_url = reverse("platform_admin:billing_usageevent_changelist") + (
        f"?organization__id__exact={organization.pk}"
        f"&occurred_at__gte={report.start:%Y-%m-%d}&occurred_at__lt={report.end:%Y-%m-%d}"
    )
    context = {
        **platform_admin.each_context(request),
        "title": f"{organization.name}: usage and revenue",
        "u": usage,
        "f": usage.figures,
        "subscription": subscription,
        "report": report,
        "q": report.query(),
        "choices": REPORT_CHOICES,
        "charts": _charts(usage.daily),
        "events_url": events_url,
        "tenant_admin_url": tenant_url(organization, "/admin/"),
        "currency": settings.AURA_BILLING_CURRENCY,
    }
    return TemplateResponse(request, "admin/billing/organization.html", context)


platform_admin.add_page(StaffPage("billing/", "billing_dashboard", "Billing overview", billing_dashboard))
platform_admin.add_page(
    StaffPage("billing/organizations/", "billing_organizations", "Margin by organization", billing_organizations)
)
platform_admin.add_page(StaffPage("billing/organizations/<int:pk>/", "billing_organization", "", billing_organization))


# ================================================================== the platform's organization pages
class OrganizationAccountColumns:
    """Plan, status, MRR, this month's usage and cost, admins and a link into the tenant's admin, on the
    platform admin's organization list and page. Mixed into the organization admin by the composition root
    (``aura/admin.py``): the tenants app below billing knows nothing of plans. A page of the list costs one
    query for the figures' subscriptions, two or three for their usage, and one for every admin of the page."""

    account_columns = ("plan_status", "mrr", "month_usage", "month_cost", "admins", "tenant_admin_link")

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        return ("name", "primary_host", *self.account_columns)

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        _attach_accounts(list(changelist.result_list))
        return changelist

    def get_fields(self, request: HttpRequest, obj: Organization | None = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        return fields if obj is None else [*fields, "account"]

    def get_readonly_fields(self, request: HttpRequest, obj: Organization | None = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if obj is None else (*fields, "account")

    @admin.display(description="Plan · status")
    def plan_status(self, obj: Organization) -> str:
        figures = _account(obj).figures
        return "no plan" if figures is None else f"{figures.plan} · {figures.status}"

    @admin.display(description="MRR")
    def mrr(self, obj: Organization) -> str:
        figures = _account(obj).figures
        return "—" if figures is None else format_money(figures.mrr)

    @admin.display(description="Voice minutes this month")
    def month_usage(self, obj: Organization) -> str:
        figures = _account(obj).figures
        if figures is None:
            return "—"
        url = reverse("platform_admin:billing_organization", args=[obj.pk])
        used = (
            f"{figures.whole_minutes:,}" if figures.voice_minutes >= Decimal("0.5") or not figures.events else "under 1"
        )
        percent = "" if figures.used_percent is None else f" ({figures.used_percent} % of plan)"
        return format_html('<a href="{}">{}{}</a>', url, used, percent)

    @admin.display(description="Cost / revenue this month")
    def month_cost(self, obj: Organization) -> str:
        figures = _account(obj).figures
        return "—" if figures is None else f"{format_money(figures.cost)} / {format_money(figures.revenue)}"

    @admin.display(description="Admins")
    def admins(self, obj: Organization) -> str:
        found = _account(obj).admins
        return ", ".join(found) if found else "none"

    @admin.display(description="Tenant admin")
    def tenant_admin_link(self, obj: Organization) -> str:
        host = next((d.domain for d in obj.domains.all() if d.is_primary), None)
        if host is None:
            return "—"
        return format_html('<a href="{}" target="_blank" rel="noopener">{} ↗</a>', origin_of(host) + "/admin/", host)

    @admin.display(description="Account this month")
    def account(self, obj: Organization) -> str:
        _attach_accounts([obj])
        found = _account(obj)
        figures = found.figures
        subscription = Subscription.objects.select_related("plan").filter(organization=obj).first()
        rows = [("Admins", ", ".join(found.admins) or "none"), ("Tenant admin", self.tenant_admin_link(obj))]
        if figures is not None and subscription is not None:
            change = reverse("platform_admin:billing_subscription_change_plan", args=[subscription.pk])
            drill = reverse("platform_admin:billing_organization", args=[obj.pk])
            trial = (
                f", trial ends {subscription.trial_ends_at:%Y-%m-%d}"
                if subscription.status == SubscriptionStatus.TRIAL and subscription.trial_ends_at
                else ""
            )
            rows = [
                (
                    "Plan",
                    format_html(
                        '{} · {}{} · <a href="{}">Change plan…</a>', figures.plan, figures.status, trial, change
                    ),
                ),
                ("MRR", format_money(figures.mrr)),
                ("Voice minutes", format_html('<a href="{}">{}</a>', drill, self.month_usage(obj))),
                ("Revenue so far (before tax)", format_money(figures.revenue)),
                ("Provider cost", format_money(figures.cost)),
                *rows,
            ]
        else:
            rows.insert(0, ("Plan", "no subscription: no limits, not invoiced (Subscriptions → Add)"))
        body = format_html_join("", "<tr><th scope='row'>{}</th><td>{}</td></tr>", rows)
        return format_html('<table id="organization-account">{}</table>', body)


@dataclass(frozen=True, slots=True)
class _Account:
    figures: OrganizationFigures | None
    admins: list[str]


_ACCOUNT = "aura_account"  # this request's figures, kept on the row it describes


def _attach_accounts(organizations: list[Organization]) -> None:
    """This month's figures and admins of a page of organizations, in a few queries; kept on each row."""
    if not organizations:
        return
    ids = [o.pk for o in organizations]
    report = ReportPeriod.parse({}, timezone.now().date())
    figures = {f.organization_id: f for f in organization_figures(report, ids)}
    admins = admins_of(organizations)
    for organization in organizations:
        setattr(organization, _ACCOUNT, _Account(figures.get(organization.pk), admins.get(organization.pk, [])))


def _account(obj: Organization) -> _Account:
    if not hasattr(obj, _ACCOUNT):
        _attach_accounts([obj])
    return getattr(obj, _ACCOUNT)


# ================================================================== tenant admins: their own organization
def _require_billing_access(request: HttpRequest) -> None:
    if not (request.user.is_superuser or request.user.has_perm("billing.view_invoice")):
        raise PermissionDenied("Only the organization's admins see its billing.")


class RequestPlanForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.none(), label="Switch to", empty_label=None)

    def __init__(self, *args: Any, current: Plan | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plans = Plan.objects.filter(is_active=True)
        if current is not None:
            plans = plans.exclude(pk=current.pk)
        self.fields["plan"].queryset = plans
        self.fields["plan"].label_from_instance = lambda plan: (
            f"{plan.name} — {format_money(plan.monthly_fee)}/month, {plan.included_minutes:,} minutes"
            + ("" if plan.self_service else " (staff approve)")
        )


def tenant_usage(request: HttpRequest) -> HttpResponse:
    _require_billing_access(request)
    subscription = Subscription.objects.select_related("plan").filter(organization=request.tenant).first()
    form = RequestPlanForm(request.POST or None, current=subscription.plan if subscription else None)
    if request.method == "POST" and form.is_valid():
        try:
            change = actions.do_request_plan_change(
                request.tenant, form.cleaned_data["plan"], requested_by=request.user.get_username()
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            if change.status == PlanChangeStatus.APPLIED:
                messages.success(request, f"You are now on {change.plan.name}. This month's invoice prorates.")
            else:
                messages.info(request, f"Your request for {change.plan.name} was sent to platform staff.")
        return redirect(request.path)
    overview = tenant_overview(request.tenant)
    plans = list(form.fields["plan"].queryset)
    # Each plan on offer with what switching now would do to this month's invoice (nothing is saved).
    offers = [(plan, plan_change_preview(subscription, plan)) for plan in plans] if subscription else []
    context = {
        **tenant_admin.each_context(request),
        "title": "Usage and billing",
        "o": overview,
        "meter": meter(overview.used_percent),
        "charts": _charts(overview.daily),
        "form": form,
        "plans": plans,
        "offers": offers,
    }
    return TemplateResponse(request, "admin/billing/tenant_usage.html", context)


def tenant_invoice(request: HttpRequest, pk: int) -> HttpResponse:
    _require_billing_access(request)
    # Filtered by the tenant: another organization's invoice id is simply not found.
    invoice = get_object_or_404(Invoice.objects.select_related("organization"), pk=pk, organization=request.tenant)
    return _invoice_page(request, invoice)


tenant_admin.add_page(StaffPage("billing/", "billing_usage", "Usage and billing", tenant_usage))
tenant_admin.add_page(StaffPage("billing/invoices/<int:pk>/", "billing_invoice", "", tenant_invoice))
