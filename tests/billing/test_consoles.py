"""The billing consoles' numbers: live usage (roll-ups + today's events, counted once), proration,
MRR / ARPA / churn over a chosen period, the CSV export, plan changes by staff and by tenants."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from billing.actions import do_change_plan, do_rollup_recent_usage, do_set_subscription_status
from billing.dashboards import organization_figures, overview_csv, platform_overview
from billing.models import PlanChangeRequest, PlanPeriod, Subscription, SubscriptionStatus
from billing.periods import ReportPeriod
from billing.pricing import PlanTerms, Segment, allowance_note, preview_plan_change
from billing.queries import live_usage
from tenants.models import Organization
from tests.billing.conftest import add_event, add_voice_minutes, make_plan, subscribe
from tests.billing.conftest import tenant_admin_client as _tenant_client
from tests.conftest import PASSWORD

SEP = ReportPeriod("this_month", date(2026, 9, 1), date(2026, 10, 1))


def _at(day: int, hour: int = 12, month: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


# ------------------------------------------------------------------ live usage
@pytest.mark.django_db
def test_live_usage_counts_events_since_the_roll_up_once_and_still_once_after_it_runs(alpha, beta):
    add_voice_minutes(alpha.organization, 10, _at(3))
    do_rollup_recent_usage(now=_at(20, 9))  # days before the 20th are complete
    add_voice_minutes(alpha.organization, 2, _at(20, 10))  # today, after the roll-up: only in the raw events
    add_event(alpha.organization, "stt_seconds", 60, _at(20, 10), cost="0.25")
    add_voice_minutes(beta.organization, 1, _at(20, 11))

    before = live_usage(SEP.starts_at, SEP.ends_at)
    assert before[alpha.organization.pk].totals.voice_seconds == Decimal(12 * 60)
    assert before[alpha.organization.pk].cost == Decimal("0.25")
    assert before[alpha.organization.pk].events == 5  # 2 rolled up (in 2 rows' counts) + 3 raw
    assert before[beta.organization.pk].totals.voice_seconds == Decimal(60)

    do_rollup_recent_usage(now=_at(21, 9))  # the 20th is now rolled up and complete

    after = live_usage(SEP.starts_at, SEP.ends_at)
    assert after[alpha.organization.pk].totals.voice_seconds == Decimal(12 * 60)  # not 14: counted once
    assert after[alpha.organization.pk].events == 5 and after[alpha.organization.pk].cost == Decimal("0.25")
    assert live_usage(SEP.starts_at, SEP.ends_at, [beta.organization.pk]).keys() == {beta.organization.pk}


@pytest.mark.django_db
def test_the_staff_and_tenant_pages_show_todays_usage_before_any_roll_up(staff_client, alpha, starter):
    subscribe(alpha.organization, starter, at=timezone.now() - timedelta(days=40))
    add_voice_minutes(alpha.organization, 3, timezone.now())  # no roll-up has run

    overview = staff_client.get("/admin/billing/").content.decode()
    tenant = _tenant_client(alpha).get("/admin/billing/").content.decode()
    drill = staff_client.get(f"/admin/billing/organizations/{alpha.organization.pk}/").content.decode()

    assert 'id="minutes"' in overview and ">3</a>" in overview and "No usage in this period" not in overview
    assert 'id="used-minutes">3<' in tenant and "No usage yet" not in tenant
    assert 'id="included-minutes">500<' in tenant and "Your plan includes 500 minutes a month." in tenant
    assert 'id="org-minutes">3<' in drill and "Visitor audio (s)" in drill


# ------------------------------------------------------------------ proration
STARTER = PlanTerms("Starter", Decimal("49"), 500, Decimal("0.12"), 2_000_000, Decimal("0.004"), hard_cap=False)
GROWTH = PlanTerms("Growth", Decimal("299"), 4000, Decimal("0.09"), 20_000_000, Decimal("0.003"), hard_cap=False)
FREE = PlanTerms("Trial", Decimal("0"), 60, Decimal("0"), 200_000, Decimal("0"), hard_cap=True)


def test_a_plan_change_half_way_credits_the_old_fee_and_charges_the_new_for_the_rest():
    preview = preview_plan_change(
        STARTER, GROWTH, at=_at(16, 0), period_start=SEP.starts_at, period_end=SEP.ends_at, in_trial=False
    )
    assert (preview.remaining, preview.credit, preview.charge, preview.net) == (
        Decimal("0.5000"),
        Decimal("24.50"),
        Decimal("149.50"),
        Decimal("125.00"),
    )
    assert not preview.ends_trial


def test_a_paid_plan_during_a_trial_ends_it_and_a_free_one_charges_nothing():
    paid = preview_plan_change(
        FREE, STARTER, at=_at(21, 0), period_start=SEP.starts_at, period_end=SEP.ends_at, in_trial=True
    )
    assert paid.ends_trial and paid.credit == 0 and paid.charge == Decimal("16.33")  # 49 × 10/30
    free = preview_plan_change(
        STARTER, FREE, at=_at(21, 0), period_start=SEP.starts_at, period_end=SEP.ends_at, in_trial=True
    )
    assert not free.ends_trial and free.charge == 0 and free.credit == 0
    with pytest.raises(ValueError, match="inside the period"):
        preview_plan_change(
            STARTER, GROWTH, at=_at(1, 0, month=10), period_start=SEP.starts_at, period_end=SEP.ends_at, in_trial=False
        )


def test_the_allowance_is_explained_in_whole_minutes_in_one_line():
    started_12th = [Segment(STARTER, _at(12, 0), SEP.ends_at)]
    whole_month = [Segment(STARTER, SEP.starts_at, SEP.ends_at)]
    changed = [Segment(STARTER, SEP.starts_at, _at(16, 0)), Segment(GROWTH, _at(16, 0), SEP.ends_at)]

    assert allowance_note(started_12th, SEP.starts_at, SEP.ends_at, plan_minutes=500) == (
        "Your plan includes 500 minutes a month; this period started on the 12th, "
        "so 317 minutes are included until the 1st."  # 500 × 19/30 = 316.67
    )
    assert allowance_note(whole_month, SEP.starts_at, SEP.ends_at, plan_minutes=500) == (
        "Your plan includes 500 minutes a month."
    )
    assert "2,250 minutes are included (250 under Starter from the 1st + 2,000 under Growth from the 16th)" in (
        allowance_note(changed, SEP.starts_at, SEP.ends_at, plan_minutes=4000)
    )


# ------------------------------------------------------------------ a coherent subscription after a change
@pytest.mark.django_db
def test_a_paid_plan_change_ends_the_trial_and_the_subscription_reads_active(alpha, starter):
    trial = make_plan(name="Trial", monthly_fee=Decimal("0"), included_minutes=60)
    now = timezone.now()
    subscription = subscribe(
        alpha.organization,
        trial,
        at=now - timedelta(hours=1),
        status=SubscriptionStatus.TRIAL,
        trial_ends_at=now + timedelta(days=14),
    )

    changed = do_change_plan(subscription, starter, at=now)

    assert changed.status == SubscriptionStatus.ACTIVE and changed.trial_ends_at == now
    stored = Subscription.objects.get(pk=subscription.pk)
    assert (stored.status, stored.trial_ends_at, stored.plan) == (SubscriptionStatus.ACTIVE, now, starter)


@pytest.mark.django_db
def test_a_free_plan_change_keeps_the_trial_and_a_cancelled_subscription_is_refused(alpha, starter):
    trial = make_plan(name="Trial", monthly_fee=Decimal("0"), included_minutes=60)
    free = make_plan(name="Free too", monthly_fee=Decimal("0"), included_minutes=30)
    now = timezone.now()
    ends = now + timedelta(days=14)
    subscription = subscribe(alpha.organization, trial, at=now - timedelta(hours=1), status="trial", trial_ends_at=ends)

    do_change_plan(subscription, free, at=now)
    assert Subscription.objects.get(pk=subscription.pk).status == "trial"
    assert Subscription.objects.get(pk=subscription.pk).trial_ends_at == ends

    do_set_subscription_status(subscription, SubscriptionStatus.CANCELLED, at=now + timedelta(seconds=1))
    with pytest.raises(Exception, match="cancelled"):
        do_change_plan(subscription, starter, at=now + timedelta(seconds=2))


# ------------------------------------------------------------------ MRR, ARPA, churn, trend
@pytest.fixture
def two_customers(alpha, beta, starter, growth):
    subscribe(alpha.organization, starter, at=_at(1, 0, month=8))
    gone = subscribe(beta.organization, growth, at=_at(1, 0, month=8))
    do_set_subscription_status(gone, SubscriptionStatus.CANCELLED, at=_at(10, 0))
    add_voice_minutes(alpha.organization, 100, _at(5))
    return alpha, beta


@pytest.mark.django_db
def test_mrr_arpa_and_churn_over_a_period_against_the_previous_one(two_customers):
    _, beta = two_customers

    overview = platform_overview(SEP, now=_at(20))

    now, before = overview.totals, overview.before
    assert (now.mrr, now.paying, now.arpa, now.churned) == (Decimal("49"), 1, Decimal("49.00"), 1)
    assert (before.mrr, before.paying, before.arpa, before.churned) == (Decimal("348"), 2, Decimal("174.00"), 0)
    assert now.revenue == Decimal("49.00") + Decimal("89.70")  # beta: 299 × 9/30 until it cancelled
    assert [s.organization_id for s in overview.churned] == [beta.organization.pk]
    assert overview.trends()["mrr"] == "-85.9 %" and overview.trends()["churned"] == "new"
    assert overview.previous == ReportPeriod("previous", date(2026, 8, 1), date(2026, 9, 1))


@pytest.mark.django_db
def test_a_period_of_days_prorates_fees_by_month(two_customers):
    alpha, _ = two_customers
    days = ReportPeriod("custom", date(2026, 8, 17), date(2026, 9, 16))  # 15 days of August, 15 of September

    figures = {f.organization_id: f for f in organization_figures(days, [alpha.organization.pk], now=_at(20))}

    assert figures[alpha.organization.pk].revenue == Decimal("23.71") + Decimal("24.50")  # 49 × 15/31 + 49 × 15/30
    assert figures[alpha.organization.pk].voice_minutes == Decimal(100)


@pytest.mark.django_db
def test_trials_ending_soon_are_listed(alpha, beta, starter):
    now = timezone.now()
    subscribe(
        alpha.organization, starter, at=now - timedelta(days=10), status="trial", trial_ends_at=now + timedelta(days=3)
    )
    subscribe(
        beta.organization, starter, at=now - timedelta(days=1), status="trial", trial_ends_at=now + timedelta(days=13)
    )

    overview = platform_overview(now=now)

    assert [s.organization_id for s in overview.trials_ending] == [alpha.organization.pk]


# ------------------------------------------------------------------ CSV export and the period picker
@pytest.mark.django_db
def test_the_csv_export_has_one_row_per_organization_and_no_spreadsheet_formulas(staff_client, two_customers):
    _, beta = two_customers
    Organization.objects.filter(pk=beta.organization.pk).update(name='=HYPERLINK("http://x")')

    response = staff_client.get("/admin/billing/?period=custom&from=2026-09-01&to=2026-09-30&format=csv")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="aura-billing-20260901-20260930.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_slug = {row["slug"]: row for row in rows}
    assert by_slug["alpha"]["mrr"] == "49.00" and by_slug["alpha"]["voice_minutes"] == "100.000"
    assert by_slug["alpha"]["revenue_before_tax"] == "49.00" and by_slug["alpha"]["currency"] == "USD"
    assert by_slug["beta"]["organization"].startswith("'=")  # a formula is text in a spreadsheet
    assert by_slug["beta"]["status"] == "Cancelled" and by_slug["beta"]["revenue_before_tax"] == "89.70"
    assert overview_csv(platform_overview(SEP, now=_at(20))) == response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "period=bogus",
        "period=custom&from=2026-09-30&to=2026-09-01",
        "period=custom&from=yesterday&to=2026-09-01",
        "period=custom&from=2020-01-01&to=2026-09-01",
        "period=custom&from=2026-09-01%00&to=2026-09-02",
    ],
)
def test_a_bad_period_is_a_404_not_an_error(staff_client, query):
    # A NUL anywhere in a query is refused before any view by the bad-input middleware (400).
    expected = 400 if "%00" in query else 404
    assert staff_client.get(f"/admin/billing/?{query}").status_code == expected
    assert staff_client.get(f"/admin/billing/organizations/?{query}").status_code == expected


@pytest.mark.django_db
def test_every_figure_links_to_what_makes_it_up(staff_client, two_customers):
    alpha, _ = two_customers
    page = staff_client.get("/admin/billing/?period=last_month").content.decode()
    drill = f"/admin/billing/organizations/{alpha.organization.pk}/?period=last_month"

    assert 'href="/admin/billing/organizations/?period=last_month&amp;sort=revenue"' in page
    assert f'href="{drill}"' in page
    margins = staff_client.get(
        "/admin/billing/organizations/?period=last_month&sort=mrr&status=paying"
    ).content.decode()
    assert f'href="{drill}"' in margins
    detail = staff_client.get(drill).content.decode()
    assert f"organization__id__exact={alpha.organization.pk}" in detail and 'id="usage-by-metric"' in detail
    events = f"/admin/billing/usageevent/?organization__id__exact={alpha.organization.pk}"
    listed = staff_client.get(f"{events}&occurred_at__gte=2026-08-01&occurred_at__lt=2026-09-01")
    assert listed.status_code == 200 and "?e=1" not in listed.get("Location", "")
    assert staff_client.get("/admin/billing/organizations/999999/").status_code == 404


# ------------------------------------------------------------------ the platform's organization pages
@pytest.mark.django_db
def test_the_organization_list_shows_plan_mrr_usage_admins_and_a_link_into_their_admin(
    staff_client, alpha, beta, starter, django_assert_max_num_queries
):
    subscribe(alpha.organization, starter, at=timezone.now() - timedelta(days=40))
    add_voice_minutes(alpha.organization, 7, timezone.now())

    with django_assert_max_num_queries(20):
        page = staff_client.get("/admin/tenants/organization/").content.decode()
    detail = staff_client.get(f"/admin/tenants/organization/{alpha.organization.pk}/change/").content.decode()

    assert "Starter · Active" in page and "$49.00" in page
    assert alpha.admin_email in page and beta.admin_email in page
    assert f'href="http://{alpha.host}:' in page and '/admin/" target="_blank"' in page
    assert f'href="/admin/billing/organizations/{alpha.organization.pk}/">7' in page
    assert 'id="organization-account"' in detail and "Change plan…" in detail and alpha.admin_email in detail


# ------------------------------------------------------------------ tenants ask for a plan
@pytest.mark.django_db
def test_a_tenant_switches_to_a_self_service_plan_and_asks_staff_for_another(staff_client, alpha, starter, growth):
    starter.self_service = True
    starter.save()
    trial = make_plan(name="Trial", monthly_fee=Decimal("0"), included_minutes=60)
    now = timezone.now()
    subscribe(
        alpha.organization, trial, at=now - timedelta(days=1), status="trial", trial_ends_at=now + timedelta(days=13)
    )
    client = _tenant_client(alpha)

    page = client.get("/admin/billing/").content.decode()
    assert "Growth — $299.00/month, 4,000 minutes (staff approve)" in page
    client.post("/admin/billing/", {"plan": starter.pk})
    subscription = Subscription.objects.get(organization=alpha.organization)
    assert (subscription.plan, subscription.status) == (starter, "active")  # applied, trial over

    client.post("/admin/billing/", {"plan": growth.pk})
    assert Subscription.objects.get(organization=alpha.organization).plan == starter  # waits for staff
    assert 'id="pending-request"' in client.get("/admin/billing/").content.decode()
    request = PlanChangeRequest.objects.get(status="pending")
    staff_client.post(
        "/admin/billing/planchangerequest/", {"action": "approve", "_selected_action": [request.pk]}, follow=True
    )
    assert Subscription.objects.get(organization=alpha.organization).plan == growth
    assert PlanPeriod.objects.filter(subscription=subscription).count() == 3


@pytest.mark.django_db
def test_a_tenant_cannot_pick_a_retired_or_made_up_plan(alpha, starter, growth):
    subscribe(alpha.organization, starter, at=timezone.now() - timedelta(days=1))
    growth.is_active, growth.self_service = False, True
    growth.save()
    client = _tenant_client(alpha)

    for plan in (growth.pk, 999999, "1 OR 1=1", "\x00"):
        assert client.post("/admin/billing/", {"plan": plan}).status_code == 200  # the form's error, no change
    assert Subscription.objects.get(organization=alpha.organization).plan == starter
    assert not PlanChangeRequest.objects.exists()


@pytest.mark.django_db
def test_the_new_staff_pages_are_for_staff_only_and_not_on_tenant_hosts(alpha, starter):
    subscription = subscribe(alpha.organization, starter, at=timezone.now() - timedelta(days=3))
    get_user_model().objects.create_user("visitor", password=PASSWORD)
    visitor = Client(HTTP_HOST="localhost")
    visitor.login(username="visitor", password=PASSWORD)
    urls = [
        "/admin/billing/?format=csv",
        f"/admin/billing/organizations/{alpha.organization.pk}/",
        f"/admin/billing/subscription/{subscription.pk}/change-plan/",
        "/admin/billing/planchangerequest/",
    ]
    for url in urls:
        assert Client(HTTP_HOST="localhost").get(url).status_code == 302, url  # to the login page
        assert visitor.get(url).status_code == 302, url
        on_tenant_host = _tenant_client(alpha).get(url)
        if url.startswith("/admin/billing/?"):  # there: the tenant's own usage page, never the export
            assert on_tenant_host["Content-Type"].startswith("text/html")
        else:
            assert on_tenant_host.status_code == 404, url  # the tenant's own admin has no such page
    assert visitor.post(urls[2], {"plan": starter.pk, "confirm": "yes"}).status_code == 302
    assert Subscription.objects.get(pk=subscription.pk).plan == starter


@pytest.mark.django_db
def test_an_organization_still_opening_does_not_break_the_list(staff_client, alpha):
    Organization.objects.create(name="Opening", slug="opening", schema_name="t_opening", is_ready=False)

    page = staff_client.get("/admin/tenants/organization/")

    assert page.status_code == 200 and "Opening" in page.content.decode()


def test_charts_have_legible_labels_and_round_ticks():
    import re

    from billing.charts import bar_chart, nice_ticks
    from billing.templatetags.billing_format import format_money, minutes, unit_price

    svg = str(bar_chart([f"{d:02d} Sep" for d in range(1, 31)], {"Minutes": [18.2] + [0] * 29}, title="Minutes"))

    sizes = [int(size) for size in re.findall(r'font-size="(\d+)"', svg)]
    assert sizes and min(sizes) >= 12  # and the SVG never shrinks below 11/12 of its width:
    assert "min-width:586px" in svg
    ticks = re.findall(r'text-anchor="end">([^<]+)<', svg)
    assert ticks == ["0", "5", "10", "15", "20"]  # not 0 / 9.12 / 18
    assert nice_ticks(9.12) == [0, 2.5, 5, 7.5, 10] and nice_ticks(0) == [0, 1]
    assert (format_money(Decimal("1234.5")), format_money(Decimal("-3.2")), format_money(7, "SEK")) == (
        "$1,234.50",
        "−$3.20",
        "SEK 7.00",
    )
    assert (unit_price(Decimal("0.0030")), unit_price(Decimal("0.12")), unit_price(Decimal("0.00001"))) == (
        "$0.003",
        "$0.12",
        "$0.0000",
    )
    assert (minutes(Decimal("0.189")), minutes(Decimal("395.124")), minutes(0)) == ("under 1", "395", "0")
