"""The billing pages: staff only on the platform, each tenant's admins see only their own organization."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from billing.actions import do_draft_invoices, do_rollup_usage
from billing.models import Invoice, PlanPeriod, ProviderPrice, Subscription, UsageEvent
from billing.periods import Period
from tests.billing.conftest import add_event, add_voice_minutes, subscribe
from tests.billing.conftest import tenant_admin_client as _tenant_client
from tests.conftest import PASSWORD

AUG = Period(date(2026, 8, 1), date(2026, 9, 1))


@pytest.fixture
def invoiced(alpha, beta, starter):
    """August invoices for alpha and beta, and usage this month."""
    for tenant, minutes in ((alpha, 700), (beta, 50)):
        subscribe(tenant.organization, starter, at=AUG.starts_at)
        add_voice_minutes(tenant.organization, minutes, datetime(2026, 8, 10, tzinfo=UTC))
        add_voice_minutes(tenant.organization, minutes // 2, timezone.now())
        add_event(tenant.organization, "llm_output_tokens", 1000, timezone.now(), cost="0.0006")
    do_draft_invoices(AUG, now=datetime(2026, 9, 10, tzinfo=UTC))
    today = timezone.now().date()
    do_rollup_usage(today - timedelta(days=1), today + timedelta(days=1))
    return {t.organization.slug: Invoice.objects.get(organization=t.organization) for t in (alpha, beta)}


@pytest.mark.django_db
def test_the_staff_dashboard_shows_money_usage_and_charts(staff_client, invoiced):
    page = staff_client.get("/admin/billing/").content.decode()

    assert ">$98.00</a>" in page and 'id="mrr"' in page  # two Starter subscriptions
    paying = "/admin/billing/organizations/?period=this_month&amp;sort=mrr&amp;status=paying"
    assert f'id="arpa" href="{paying}">$49.00<' in page
    assert 'id="cost" href="/admin/billing/organizations/?period=this_month&amp;sort=cost">$0.00<' in page
    assert "<svg" in page and "Revenue and provider cost by month" in page
    assert "Visitor audio (s) per day" in page  # usage by metric over time
    assert 'id="top-organizations"' in page and "Alpha" in page and "Beta" in page
    assert 'id="near-cap"' in page and 'id="invoices-by-status"' in page
    assert 'id="active-sessions">0<' in page
    assert 'id="trials-ending"' in page and 'id="churned-organizations"' in page and 'id="export-csv"' in page


@pytest.mark.django_db
def test_the_margin_page_sorts_and_refuses_unknown_sorts(staff_client, invoiced):
    page = staff_client.get("/admin/billing/organizations/?sort=usage").content.decode()
    assert page.index("Alpha") < page.index("Beta")  # alpha used more of its plan this month
    assert staff_client.get("/admin/billing/organizations/?sort=bogus").status_code == 404


@pytest.mark.django_db
def test_billing_pages_are_for_staff_only(invoiced):
    get_user_model().objects.create_user("visitor", password=PASSWORD)
    client = Client(HTTP_HOST="localhost")
    client.login(username="visitor", password=PASSWORD)

    assert client.get("/admin/billing/").status_code == 302  # to the login page
    assert Client(HTTP_HOST="localhost").get("/admin/billing/organizations/").status_code == 302


@pytest.mark.django_db
def test_staff_print_an_invoice_and_mark_it_paid(staff_client, invoiced):
    alpha_invoice = invoiced["alpha"]
    page = staff_client.get(f"/admin/billing/invoice/{alpha_invoice.pk}/print/").content.decode()
    assert alpha_invoice.number in page and 'id="total">' in page and "window.print()" in page

    staff_client.post(
        "/admin/billing/invoice/", {"action": "mark_paid", "_selected_action": [alpha_invoice.pk]}, follow=True
    )
    alpha_invoice.refresh_from_db()
    assert alpha_invoice.status == "paid"


@pytest.mark.django_db
def test_a_tenant_admin_sees_its_own_usage_plan_and_invoices_only(alpha, beta, invoiced):
    client = _tenant_client(alpha)

    index = client.get("/admin/").content.decode()
    assert "Usage and billing" in index
    page = client.get("/admin/billing/").content.decode()
    assert "Your plan: Starter" in page and "<svg" in page
    assert invoiced["alpha"].number in page
    assert invoiced["beta"].number not in page
    assert 'id="used-minutes">350<' in page  # alpha's minutes this month (beta used 25), whole minutes
    assert "No usage yet" not in page

    own = client.get(f"/admin/billing/invoices/{invoiced['alpha'].pk}/")
    assert own.status_code == 200 and invoiced["alpha"].number in own.content.decode()
    assert client.get(f"/admin/billing/invoices/{invoiced['beta'].pk}/").status_code == 404
    assert client.get("/admin/billing/invoice/").status_code == 404  # the staff list does not exist on tenant hosts


@pytest.mark.django_db
def test_another_tenants_admin_cannot_log_in_to_read_its_billing(alpha, beta, invoiced):
    client = Client(HTTP_HOST=alpha.host)
    client.post("/admin/login/", {"username": beta.admin_email, "password": PASSWORD})

    assert client.get("/admin/billing/").status_code == 302  # not logged in here


@pytest.mark.django_db
def test_staff_change_a_plan_after_seeing_its_price_and_proration(staff_client, alpha, starter, growth):
    subscription = subscribe(alpha.organization, starter, at=timezone.now() - timedelta(days=3))
    url = f"/admin/billing/subscription/{subscription.pk}/change-plan/"

    form = staff_client.get(f"/admin/billing/subscription/{subscription.pk}/change/").content.decode()
    assert 'name="plan"' not in form and f'href="{url}"' in form  # no bare dropdown on the subscription
    preview = staff_client.post(url, {"plan": growth.pk}).content.decode()
    assert 'id="plan-change-preview"' in preview and 'id="new-price">$299.00 a month' in preview
    assert 'id="old-price">$49.00 a month' in preview and 'id="credit">−$' in preview
    assert Subscription.objects.get(pk=subscription.pk).plan == starter  # nothing saved before the confirm

    response = staff_client.post(url, {"plan": growth.pk, "confirm": "yes"})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Subscription.objects.get(pk=subscription.pk).plan == growth
    history = list(PlanPeriod.objects.filter(subscription=subscription).order_by("starts_at"))
    assert [(p.plan, p.ends_at is None) for p in history] == [(starter, False), (growth, True)]


@pytest.mark.django_db
def test_a_made_up_plan_or_subscription_is_refused_on_the_change_page(staff_client, alpha, starter):
    subscription = subscribe(alpha.organization, starter, at=timezone.now() - timedelta(days=3))
    url = f"/admin/billing/subscription/{subscription.pk}/change-plan/"

    assert staff_client.post(url, {"plan": 999999, "confirm": "yes"}).status_code == 200  # the form's error
    assert staff_client.post(url, {"plan": starter.pk, "confirm": "yes"}).status_code == 200  # not its own plan
    assert staff_client.get("/admin/billing/subscription/999999/change-plan/").status_code == 404
    assert Client(HTTP_HOST="localhost").post(url, {"plan": starter.pk}).status_code == 302  # to the login
    assert Subscription.objects.get(pk=subscription.pk).plan == starter


@pytest.mark.django_db
def test_a_new_price_in_the_admin_reprices_recorded_usage(staff_client, alpha):
    event = add_event(
        alpha.organization,
        "llm_input_tokens",
        1_000_000,
        datetime(2026, 7, 1, tzinfo=UTC),
        cost=None,
        provider="xai",
        model="grok-future",
    )
    response = staff_client.post(
        "/admin/billing/providerprice/add/",
        {
            "provider": "xai",
            "model": "grok-future",
            "metric": "llm_input_tokens",
            "price": "2.5",
            "per_quantity": "1000000",
            "effective_from_0": "2026-01-01",
            "effective_from_1": "00:00:00",
            "note": "",
        },
    )

    assert response.status_code == 302
    assert ProviderPrice.objects.filter(model="grok-future").exists()
    assert UsageEvent.objects.get(pk=event.pk).cost == Decimal("2.50000000")


@pytest.mark.django_db
def test_a_plan_in_use_keeps_its_prices(staff_client, alpha, starter, growth):
    subscribe(alpha.organization, starter, at=timezone.now())

    in_use = staff_client.get(f"/admin/billing/plan/{starter.pk}/change/").content.decode()
    unused = staff_client.get(f"/admin/billing/plan/{growth.pk}/change/").content.decode()

    assert 'name="monthly_fee"' not in in_use and 'name="max_concurrent_sessions"' in in_use
    assert 'name="monthly_fee"' in unused
