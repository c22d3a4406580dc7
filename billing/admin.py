"""Billing in the two admins.

Platform staff (public admin, staff only): the price list, plans, subscriptions, usage, invoices,
alerts, and two dashboards (billing overview, margin by organization).
Tenant admins: one page with their usage this month against the plan, their plan and their
invoices (printable). Billing rows live in the public schema; every tenant view filters on
``request.tenant``, so an organization's admins only ever see its own.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from billing import actions
from billing.charts import bar_chart, meter
from billing.dashboards import day_label, platform_overview, tenant_overview
from billing.models import (
    DailyUsage,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Plan,
    PlanPeriod,
    ProviderPrice,
    Subscription,
    UsageAlert,
    UsageEvent,
)
from core.admin_sites import StaffPage, platform_admin, tenant_admin


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
    """Changing the plan or the status goes through billing.actions (plan history, proration, cancellation)."""

    list_display = ("organization", "plan", "status", "started_at", "trial_ends_at", "cancelled_at")
    list_filter = ("status", "plan")
    search_fields = ("organization__name", "organization__slug")
    inlines = [PlanPeriodInline]
    readonly_fields = ("started_at", "cancelled_at", "updated_at")

    def get_fields(self, request: HttpRequest, obj: Subscription | None = None) -> list[str]:
        if obj is None:
            return ["organization", "plan"]
        return ["organization", "plan", "status", "trial_ends_at", "started_at", "cancelled_at", "updated_at"]

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
            if obj.plan_id != before.plan_id:
                actions.do_change_plan(before, obj.plan)
                messages.info(request, f"Plan changed to {obj.plan} from now on; this month's invoice prorates.")
            if obj.status != before.status:
                actions.do_set_subscription_status(Subscription.objects.get(pk=obj.pk), obj.status)
            if obj.trial_ends_at != before.trial_ends_at:
                Subscription.objects.filter(pk=obj.pk).update(trial_ends_at=obj.trial_ends_at)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))


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
def billing_dashboard(request: HttpRequest) -> HttpResponse:
    overview = platform_overview()
    daily_charts = [
        bar_chart([day_label(day) for day, _ in points], {label: [q for _, q in points]}, title=f"{label} per day")
        for label, points in overview.daily.items()
    ]
    monthly_chart = bar_chart(
        [f"{month:%b %y}" for month, _, _ in overview.monthly],
        {
            "Revenue before tax (this month: so far)": [revenue for _, revenue, _ in overview.monthly],
            "Provider cost": [cost for _, _, cost in overview.monthly],
        },
        title=f"Revenue and provider cost by month ({settings.AURA_BILLING_CURRENCY})",
        unit=settings.AURA_BILLING_CURRENCY,
    )
    invoice_chart = bar_chart(
        [row["status"] for row in overview.invoices],
        {"Invoices": [row["n"] for row in overview.invoices]},
        title="Invoices by status",
        height=180,
    )
    context = {
        **platform_admin.each_context(request),
        "title": "Billing overview",
        "o": overview,
        "currency": settings.AURA_BILLING_CURRENCY,
        "daily_charts": daily_charts,
        "monthly_chart": monthly_chart,
        "invoice_chart": invoice_chart,
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
    "name": lambda o: o.name.lower(),
}


def billing_organizations(request: HttpRequest) -> HttpResponse:
    sort = request.GET.get("sort", "margin")
    if sort not in SORTS:
        raise Http404(f"Unknown sort “{sort}”; use one of {', '.join(SORTS)}.")
    overview = platform_overview()
    context = {
        **platform_admin.each_context(request),
        "title": "Margin by organization",
        "o": overview,
        "rows": sorted(overview.organizations, key=SORTS[sort]),
        "sort": sort,
        "sorts": list(SORTS),
        "currency": settings.AURA_BILLING_CURRENCY,
    }
    return TemplateResponse(request, "admin/billing/organizations.html", context)


platform_admin.add_page(StaffPage("billing/", "billing_dashboard", "Billing overview", billing_dashboard))
platform_admin.add_page(
    StaffPage("billing/organizations/", "billing_organizations", "Margin by organization", billing_organizations)
)


# ================================================================== tenant admins: their own organization
def _require_billing_access(request: HttpRequest) -> None:
    if not (request.user.is_superuser or request.user.has_perm("billing.view_invoice")):
        raise PermissionDenied("Only the organization's admins see its billing.")


def tenant_usage(request: HttpRequest) -> HttpResponse:
    _require_billing_access(request)
    overview = tenant_overview(request.tenant)
    charts = [
        bar_chart([day_label(day) for day, _ in points], {label: [q for _, q in points]}, title=f"{label} per day")
        for label, points in overview.daily.items()
    ]
    context = {
        **tenant_admin.each_context(request),
        "title": "Usage and billing",
        "o": overview,
        "meter": meter(overview.used_percent),
        "charts": charts,
    }
    return TemplateResponse(request, "admin/billing/tenant_usage.html", context)


def tenant_invoice(request: HttpRequest, pk: int) -> HttpResponse:
    _require_billing_access(request)
    # Filtered by the tenant: another organization's invoice id is simply not found.
    invoice = get_object_or_404(Invoice.objects.select_related("organization"), pk=pk, organization=request.tenant)
    return _invoice_page(request, invoice)


tenant_admin.add_page(StaffPage("billing/", "billing_usage", "Usage and billing", tenant_usage))
tenant_admin.add_page(StaffPage("billing/invoices/<int:pk>/", "billing_invoice", "", tenant_invoice))
