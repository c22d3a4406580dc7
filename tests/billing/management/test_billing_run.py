"""manage.py billing_run re-runs a job for a period, and says clearly what is wrong with its input."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import DailyUsage, Invoice, MonthlyUsage
from tests.billing.conftest import add_voice_minutes, subscribe


def _run(*args: str) -> str:
    out = StringIO()
    call_command("billing_run", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_rollup_for_a_period_twice_is_exact(alpha):
    add_voice_minutes(alpha.organization, 3, datetime(2026, 8, 31, 23, 59, tzinfo=UTC))
    add_voice_minutes(alpha.organization, 4, datetime(2026, 9, 1, tzinfo=UTC))

    out = _run("rollup", "--from", "2026-08-01", "--to", "2026-09-30")
    _run("rollup", "--from", "2026-08-01", "--to", "2026-09-30")

    assert "rolled up 2026-08-01 … 2026-09-30: 4 daily rows, 4 monthly rows" in out
    assert DailyUsage.objects.count() == 4
    assert sorted(MonthlyUsage.objects.values_list("month", "quantity")) == [
        (datetime(2026, 8, 1).date(), Decimal("90.000")),
        (datetime(2026, 8, 1).date(), Decimal("90.000")),
        (datetime(2026, 9, 1).date(), Decimal("120.000")),
        (datetime(2026, 9, 1).date(), Decimal("120.000")),
    ]


@pytest.mark.django_db
def test_invoices_and_alerts_for_past_months(alpha, starter):
    subscribe(alpha.organization, starter, at=datetime(2026, 8, 1, tzinfo=UTC))

    out = _run("invoices", "--from", "2026-08-01", "--to", "2026-09-30")
    assert "August 2026: 0 drafted, 1 finalized" in out and "September 2026: 0 drafted, 1 finalized" in out
    assert Invoice.objects.count() == 2
    assert "September 2026: 0 new alerts" in _run("alerts", "--from", "2026-09-01", "--to", "2026-09-30")
    assert "not over yet" in _run("invoices", "--from", "2099-01-01", "--to", "2099-01-02")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rollup", "--from", "2026-13-01", "--to", "2026-09-30"], "is not a date"),
        (["rollup", "--from", "2026-09-30", "--to", "2026-09-01"], "before --from"),
    ],
)
@pytest.mark.django_db
def test_bad_dates_are_refused_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("billing_run", *args)


def test_an_unknown_job_is_refused():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("billing_run", "refunds", "--from", "2026-09-01", "--to", "2026-09-02")
