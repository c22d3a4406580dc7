"""Invoice drafts and finalization: hand-computed totals, plan changes, late events, re-runs, crashes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

import billing.actions as billing_actions
from billing.actions import do_change_plan, do_draft_invoices, do_set_invoice_status, do_set_subscription_status
from billing.models import Invoice, InvoiceStatus, MonthlyUsage
from billing.periods import Period
from tests.billing.conftest import add_event, add_voice_minutes, subscribe

SEP = Period(date(2026, 9, 1), date(2026, 10, 1))  # 30 days
SEP_1, SEP_16 = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 16, tzinfo=UTC)


def _oct(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


def _lines(invoice: Invoice) -> list[tuple[str, Decimal]]:
    return [(line.kind, line.amount) for line in invoice.lines.all()]


@pytest.fixture
def tax_20(settings):
    settings.AURA_BILLING_TAX_RATE = Decimal("0.20")
    settings.AURA_BILLING_GRACE_DAYS = 3


@pytest.fixture
def alpha_changes_plan_mid_month(alpha, starter, growth, tax_20):
    """Starter from 1 September, Growth from 16 September 00:00; 2,400 voice minutes used."""
    subscription = subscribe(alpha.organization, starter, at=SEP_1)
    do_change_plan(subscription, growth, at=SEP_16)
    add_voice_minutes(alpha.organization, 1000, datetime(2026, 9, 5, tzinfo=UTC))
    add_voice_minutes(alpha.organization, 1400, datetime(2026, 9, 25, tzinfo=UTC))
    return subscription


@pytest.mark.django_db
def test_a_mid_month_plan_change_is_prorated_on_the_draft(alpha, alpha_changes_plan_mid_month):
    run = do_draft_invoices(SEP, now=_oct(2))

    invoice = Invoice.objects.get(organization=alpha.organization, period_start=SEP.start)
    assert (run.drafted, run.finalized) == (1, 0)
    assert invoice.status == InvoiceStatus.DRAFT
    # 49 × 15/30 + 299 × 15/30; allowance 250 + 2000 = 2250 min; 150 over at Growth's 0.09
    assert _lines(invoice) == [
        ("base_fee", Decimal("24.50")),
        ("base_fee", Decimal("149.50")),
        ("included_minutes", Decimal("0.00")),
        ("overage_minutes", Decimal("13.50")),
    ]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("187.50"), Decimal("37.50"), Decimal("225.00"))
    assert invoice.plan_name == "Starter, Growth"
    assert invoice.number == f"AURA-202609-{alpha.organization.pk:05d}"


@pytest.mark.django_db
def test_late_events_count_inside_the_grace_period_and_not_after_finalization(alpha, alpha_changes_plan_mid_month):
    do_draft_invoices(SEP, now=_oct(2))
    add_voice_minutes(alpha.organization, 60, datetime(2026, 9, 30, 23, 59, tzinfo=UTC))  # arrives on 3 October

    do_draft_invoices(SEP, now=_oct(3))  # still inside the 3-day grace period: redrafted
    invoice = Invoice.objects.get(organization=alpha.organization)
    # 210 over × 0.09 = 18.90; subtotal 192.90; tax 38.58
    assert (invoice.status, invoice.total) == (InvoiceStatus.DRAFT, Decimal("231.48"))

    run = do_draft_invoices(SEP, now=_oct(4, 1))  # the grace period is over: final
    invoice.refresh_from_db()
    assert (run.finalized, invoice.status, invoice.total) == (1, InvoiceStatus.OPEN, Decimal("231.48"))
    assert invoice.finalized_at == _oct(4, 1)

    add_voice_minutes(alpha.organization, 100, datetime(2026, 9, 30, 23, 59, tzinfo=UTC))  # after finalization
    run = do_draft_invoices(SEP, now=_oct(6))
    invoice.refresh_from_db()
    assert (run.unchanged, invoice.total, invoice.lines.count()) == (1, Decimal("231.48"), 4)  # never billed twice
    voice = MonthlyUsage.objects.filter(organization=alpha.organization, metric__startswith="audio")
    assert sum(row.quantity for row in voice) == Decimal(2560 * 60)  # but counted in usage and cost


@pytest.mark.django_db
def test_running_the_invoice_job_twice_changes_nothing(alpha, alpha_changes_plan_mid_month):
    do_draft_invoices(SEP, now=_oct(2))
    first = Invoice.objects.get()
    first_lines = _lines(first)
    do_draft_invoices(SEP, now=_oct(2, 13))

    again = Invoice.objects.get()
    assert (again.pk, again.total, _lines(again)) == (first.pk, first.total, first_lines)


@pytest.mark.django_db
def test_a_job_killed_between_organizations_finishes_exactly_on_the_next_run(
    alpha, beta, alpha_changes_plan_mid_month, starter, monkeypatch
):
    subscribe(beta.organization, starter, at=SEP_1)
    add_event(beta.organization, "audio_out_seconds", 600 * 60, datetime(2026, 9, 9, tzinfo=UTC))  # 600 min
    real = billing_actions._write_invoice
    written = []

    def killed_after_the_first(subscription, *args, **kwargs):
        if written:
            raise SystemExit("worker killed")
        written.append(subscription.organization_id)
        return real(subscription, *args, **kwargs)

    monkeypatch.setattr(billing_actions, "_write_invoice", killed_after_the_first)
    with pytest.raises(SystemExit):
        do_draft_invoices(SEP, now=_oct(5))
    assert Invoice.objects.count() == 1

    monkeypatch.setattr(billing_actions, "_write_invoice", real)
    run = do_draft_invoices(SEP, now=_oct(5))

    totals = dict(Invoice.objects.values_list("organization__slug", "total"))
    # beta: 49 + 100 min over at 0.12 = 61.00, +20 % = 73.20
    assert totals == {"alpha": Decimal("225.00"), "beta": Decimal("73.20")}
    assert (run.finalized, run.unchanged) == (1, 1)  # the one finished before the crash was already final


@pytest.mark.django_db
def test_a_month_not_over_has_no_invoice(alpha_changes_plan_mid_month):
    with pytest.raises(ValueError, match="not ended"):
        do_draft_invoices(SEP, now=datetime(2026, 9, 30, tzinfo=UTC))


@pytest.mark.django_db
def test_a_plan_change_into_a_finalized_month_is_refused(alpha, alpha_changes_plan_mid_month, starter):
    do_draft_invoices(SEP, now=_oct(5))

    with pytest.raises(ValidationError, match="already finalized"):
        do_change_plan(alpha_changes_plan_mid_month, starter, at=datetime(2026, 9, 20, tzinfo=UTC))
    with pytest.raises(ValidationError, match="already finalized"):
        do_set_subscription_status(alpha_changes_plan_mid_month, "cancelled", at=datetime(2026, 9, 20, tzinfo=UTC))


@pytest.mark.django_db
def test_a_cancelled_subscription_is_billed_until_its_cancellation(alpha, starter, tax_20):
    subscription = subscribe(alpha.organization, starter, at=datetime(2026, 8, 1, tzinfo=UTC))
    do_set_subscription_status(subscription, "cancelled", at=SEP_16)

    do_draft_invoices(SEP, now=_oct(2))

    assert _lines(Invoice.objects.get()) == [("base_fee", Decimal("24.50"))]  # 15 of 30 days


@pytest.mark.django_db
def test_invoice_status_moves_only_forward(alpha_changes_plan_mid_month):
    do_draft_invoices(SEP, now=_oct(2))
    draft = Invoice.objects.get()
    with pytest.raises(ValidationError, match="cannot become"):
        do_set_invoice_status(draft, InvoiceStatus.PAID)

    do_draft_invoices(SEP, now=_oct(5))
    paid = do_set_invoice_status(Invoice.objects.get(), InvoiceStatus.PAID, now=_oct(6))
    assert (paid.status, paid.paid_at) == (InvoiceStatus.PAID, _oct(6))
    with pytest.raises(ValidationError, match="cannot become"):
        do_set_invoice_status(paid, InvoiceStatus.VOID)


@pytest.mark.django_db
def test_a_subscription_cancelled_then_reactivated_pays_for_neither_the_gap(alpha, starter, tax_20):
    subscription = subscribe(alpha.organization, starter, at=datetime(2026, 8, 1, tzinfo=UTC))
    do_set_subscription_status(subscription, "cancelled", at=datetime(2026, 9, 11, tzinfo=UTC))
    do_set_subscription_status(subscription, "active", at=datetime(2026, 9, 21, tzinfo=UTC))

    do_draft_invoices(SEP, now=_oct(2))

    # 10 days before the cancellation and 10 days after the reactivation: 49 × 10/30 twice
    assert _lines(Invoice.objects.get()) == [("base_fee", Decimal("16.33")), ("base_fee", Decimal("16.33"))]


@pytest.mark.django_db
def test_phone_minutes_appear_on_the_invoice_by_direction(alpha, starter):
    starter.phone_inbound_per_minute, starter.phone_outbound_per_minute = Decimal("0.03"), Decimal("0.04")
    starter.save()
    subscribe(alpha.organization, starter, at=SEP_1)
    add_event(alpha.organization, "phone_in_seconds", 600, datetime(2026, 9, 5, tzinfo=UTC), channel="phone")
    add_event(alpha.organization, "phone_out_seconds", 300, datetime(2026, 9, 6, tzinfo=UTC), channel="phone")

    do_draft_invoices(SEP, now=_oct(2))

    invoice = Invoice.objects.get(organization=alpha.organization, period_start=SEP.start)
    assert [(kind, amount) for kind, amount in _lines(invoice) if kind.startswith("phone")] == [
        ("phone_inbound", Decimal("0.30")),
        ("phone_outbound", Decimal("0.20")),
    ]
    assert invoice.subtotal == Decimal("49.50")
