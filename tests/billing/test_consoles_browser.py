"""A staff user in a real browser (Chromium, as the widget tests): the billing overview, an
organization's usage, a plan change with its proration preview; then the tenant's own usage page.
axe-core finds no serious or critical violation on any page walked; screenshots in docs/screenshots/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import Plan, Subscription
from tests.billing.conftest import add_event, add_voice_minutes, subscribe
from tests.conftest import PASSWORD
from tests.widget.test_widget_browser import _browser, _orm_beside_playwright, _screenshot  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _assert_page_accessible(page, state: str) -> None:
    """axe-core (bundled by axe-playwright-python: nothing is fetched) over the whole admin page."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page).response
    assert results["testEngine"]["name"] == "axe-core"
    serious = [
        (violation["id"], violation["impact"], [node["target"] for node in violation["nodes"]][:5])
        for violation in results["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{state}: {serious}"


def _log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def test_staff_walk_from_the_overview_to_an_organizations_usage_and_a_plan_change(daphne_server, alpha, beta):
    get_user_model().objects.create_user("ops", password=PASSWORD, is_staff=True, is_superuser=True)
    starter, growth = Plan.objects.get(slug="starter"), Plan.objects.get(slug="growth")  # as setup_platform seeds them
    subscription = subscribe(alpha.organization, starter, at=timezone.now() - timedelta(days=40))
    subscribe(
        beta.organization,
        starter,
        at=timezone.now() - timedelta(days=10),
        status="trial",
        trial_ends_at=timezone.now() + timedelta(days=4),
    )
    add_voice_minutes(alpha.organization, 45, timezone.now() - timedelta(days=33))  # last month
    add_voice_minutes(alpha.organization, 95, timezone.now())  # today: no roll-up has run
    add_event(alpha.organization, "llm_input_tokens", 120_000, timezone.now(), cost="0.018", provider="openai")
    platform = f"http://localhost:{daphne_server.port}"

    with _browser(None) as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        _log_in(page, platform, "ops")
        assert page.locator("#content-main").get_by_role("link", name="Billing overview").count() == 1

        page.goto(f"{platform}/admin/billing/")
        assert page.locator("#nav-sidebar").get_by_role("link", name="Margin by organization").count() == 1
        assert page.locator("#minutes").inner_text() == "95"  # today's events, live
        assert page.locator("#mrr").inner_text() == "$49.00"
        assert "Beta" in page.locator("#trials-ending").inner_text()
        _assert_page_accessible(page, "billing overview")
        _screenshot(page, "staff-overview")

        page.locator("#top-organizations").get_by_role("link", name="Alpha").click()
        page.wait_for_selector("#usage-by-metric")
        assert page.locator("#org-minutes").inner_text() == "95"
        _assert_page_accessible(page, "organization usage")
        _screenshot(page, "staff-organization")

        page.click("#change-plan")
        page.select_option("select[name=plan]", str(growth.pk))
        page.click("#preview-plan-change")
        page.wait_for_selector("#plan-change-preview")
        assert page.locator("#new-price").inner_text() == "$299.00 a month"
        assert Subscription.objects.get(pk=subscription.pk).plan == starter  # nothing saved yet
        _assert_page_accessible(page, "plan change preview")
        _screenshot(page, "plan-change-preview")
        page.click("#confirm-plan-change")
        page.wait_for_selector(".messagelist")
        assert Subscription.objects.get(pk=subscription.pk).plan == growth

    with _browser(None) as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        tenant = f"http://{alpha.host}:{daphne_server.port}"
        _log_in(page, tenant, alpha.admin_email)
        page.goto(f"{tenant}/admin/billing/")
        assert page.locator("#used-minutes").inner_text() == "95"
        assert "No usage yet" not in page.content()
        assert (
            page.locator("#allowance-note")
            .inner_text()
            .startswith("Your plan includes 4,000 minutes a month; the plan changed this period, so ")
        )
        _assert_page_accessible(page, "tenant usage")
        _screenshot(page, "tenant-usage")
