"""Usage alerts reach the tenant's admins once per threshold and month, even across crashes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.core import mail

import billing.actions as billing_actions
from billing.actions import do_rollup_usage, do_send_usage_alerts
from billing.models import UsageAlert
from billing.periods import Period
from tests.billing.conftest import add_voice_minutes, make_plan, subscribe

SEP = Period(date(2026, 9, 1), date(2026, 10, 1))
NOW = datetime(2026, 9, 20, tzinfo=UTC)


@pytest.fixture
def alpha_on_100_minutes(alpha):
    subscribe(alpha.organization, make_plan(included_minutes=100, included_text_tokens=0), at=SEP.starts_at)
    return alpha


def _use(tenant, minutes) -> None:
    add_voice_minutes(tenant.organization, minutes, datetime(2026, 9, 10, tzinfo=UTC))
    do_rollup_usage(SEP.start, SEP.end)


@pytest.mark.django_db
def test_alerts_at_80_and_100_percent_go_out_once(alpha_on_100_minutes):
    _use(alpha_on_100_minutes, 79)
    assert do_send_usage_alerts(SEP, now=NOW).created == 0
    assert mail.outbox == []

    _use(alpha_on_100_minutes, 2)  # 81 %
    do_send_usage_alerts(SEP, now=NOW)
    do_send_usage_alerts(SEP, now=NOW)  # the job runs again: nothing new
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["admin@alpha.example"]
    assert "80%" in mail.outbox[0].subject and "81.0%" in mail.outbox[0].body

    _use(alpha_on_100_minutes, 19)  # 100 %
    run = do_send_usage_alerts(SEP, now=NOW)
    assert (run.created, run.sent) == (1, 1)
    assert "allowance" in mail.outbox[1].subject
    assert list(UsageAlert.objects.order_by("threshold").values_list("threshold", "sent_at")) == [
        (80, NOW),
        (100, NOW),
    ]


@pytest.mark.django_db
def test_an_alert_whose_email_failed_is_sent_on_the_next_run(alpha_on_100_minutes, monkeypatch):
    _use(alpha_on_100_minutes, 90)

    def smtp_down(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(billing_actions, "send_mail", smtp_down)
    with pytest.raises(ConnectionRefusedError):
        do_send_usage_alerts(SEP, now=NOW)
    assert UsageAlert.objects.get().sent_at is None  # recorded, not sent

    monkeypatch.undo()
    run = do_send_usage_alerts(SEP, now=NOW)
    assert (run.created, run.sent, len(mail.outbox)) == (0, 1, 1)


@pytest.mark.django_db
def test_soft_and_hard_caps_both_alert_and_a_plan_without_allowance_does_not(alpha, beta):
    subscribe(alpha.organization, make_plan(included_minutes=10, cap="hard"), at=SEP.starts_at)
    subscribe(beta.organization, make_plan(included_minutes=0, included_text_tokens=0), at=SEP.starts_at)
    _use(alpha, 10)
    _use(beta, 500)

    do_send_usage_alerts(SEP, now=NOW)

    assert sorted(UsageAlert.objects.values_list("organization__slug", "threshold")) == [("alpha", 80), ("alpha", 100)]
    assert "hard cap" in mail.outbox[0].body
