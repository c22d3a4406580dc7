"""Roll-ups: exact totals, the same after a second run, and after a run that died half-way."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

import billing.actions as billing_actions
from billing.actions import do_rollup_recent_usage, do_rollup_usage
from billing.models import DailyUsage, MonthlyUsage, RollupState
from billing.periods import Period
from billing.queries import period_usage
from tests.billing.conftest import add_event, add_voice_minutes

SEP = Period(date(2026, 9, 1), date(2026, 10, 1))


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=UTC)


def _daily() -> list[tuple]:
    return sorted(
        DailyUsage.objects.values_list(
            "organization_id", "day", "metric", "channel", "quantity", "cost", "events", "unpriced_events"
        )
    )


def _monthly() -> list[tuple]:
    return sorted(MonthlyUsage.objects.values_list("organization_id", "month", "metric", "channel", "quantity", "cost"))


@pytest.fixture
def september(alpha, beta):
    add_event(alpha.organization, "llm_input_tokens", 1000, _at(1, 0), cost="0.00015")
    add_event(alpha.organization, "llm_input_tokens", 500, _at(1, 23), cost="0.000075")
    add_event(alpha.organization, "llm_input_tokens", 200, _at(1, 9), channel="text", cost=None)  # unpriced
    add_event(alpha.organization, "audio_in_seconds", "12.5", _at(2))
    add_event(beta.organization, "llm_output_tokens", 42, _at(30, 23), cost="0.0000252")
    add_event(beta.organization, "llm_output_tokens", 1, datetime(2026, 10, 1, tzinfo=UTC), cost="1")  # October
    return alpha.organization.pk, beta.organization.pk


@pytest.mark.django_db
def test_a_rollup_sums_per_organization_day_metric_and_channel(september):
    alpha_id, beta_id = september
    do_rollup_usage(SEP.start, SEP.end)

    assert _daily() == sorted(
        [
            (alpha_id, date(2026, 9, 1), "llm_input_tokens", "text", Decimal("200.000"), Decimal("0E-8"), 1, 1),
            (alpha_id, date(2026, 9, 1), "llm_input_tokens", "voice", Decimal("1500.000"), Decimal("0.000225"), 2, 0),
            (alpha_id, date(2026, 9, 2), "audio_in_seconds", "voice", Decimal("12.500"), Decimal("0E-8"), 1, 0),
            (beta_id, date(2026, 9, 30), "llm_output_tokens", "voice", Decimal("42.000"), Decimal("0.0000252"), 1, 0),
        ]
    )
    assert _monthly() == sorted(
        [
            (alpha_id, date(2026, 9, 1), "llm_input_tokens", "text", Decimal("200.000"), Decimal("0E-8")),
            (alpha_id, date(2026, 9, 1), "llm_input_tokens", "voice", Decimal("1500.000"), Decimal("0.000225")),
            (alpha_id, date(2026, 9, 1), "audio_in_seconds", "voice", Decimal("12.500"), Decimal("0E-8")),
            (beta_id, date(2026, 9, 1), "llm_output_tokens", "voice", Decimal("42.000"), Decimal("0.0000252")),
        ]
    )


@pytest.mark.django_db
def test_running_the_rollup_twice_gives_the_same_totals(september):
    do_rollup_usage(SEP.start, SEP.end)
    first = (_daily(), _monthly())
    do_rollup_usage(SEP.start, SEP.end)
    do_rollup_usage(date(2026, 9, 1), date(2026, 9, 2))  # an overlapping re-run of one day

    assert (_daily(), _monthly()) == first


@pytest.mark.django_db
def test_a_rollup_killed_half_way_leaves_old_totals_and_a_rerun_is_exact(september, alpha, monkeypatch):
    do_rollup_usage(SEP.start, SEP.end)
    add_event(alpha.organization, "audio_in_seconds", "7.5", _at(2, 18))  # a late event
    add_event(alpha.organization, "audio_in_seconds", "1", _at(20))
    monkeypatch.setattr(billing_actions, "ROLLUP_CHUNK_DAYS", 10)  # three chunks; the second one dies
    real = billing_actions._rollup_days

    def dies_in_the_second_chunk(start: date, end: date) -> int:
        if start == date(2026, 9, 11):
            with connection.cursor() as cursor:  # half of its work done …
                cursor.execute("DELETE FROM billing_dailyusage WHERE day >= %s AND day < %s", [start, end])
            raise KeyboardInterrupt("killed")  # … then the process is killed
        return real(start, end)

    monkeypatch.setattr(billing_actions, "_rollup_days", dies_in_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        do_rollup_usage(SEP.start, SEP.end)

    day2 = DailyUsage.objects.get(organization=alpha.organization, day=date(2026, 9, 2))
    assert day2.quantity == Decimal("20.000")  # the first chunk finished
    assert not DailyUsage.objects.filter(day=date(2026, 9, 20)).exists()  # the killed chunk left nothing half-done
    assert MonthlyUsage.objects.get(organization=alpha.organization, metric="audio_in_seconds").quantity == Decimal(
        "12.500"
    )  # months are redone after the days: still the old total

    monkeypatch.setattr(billing_actions, "_rollup_days", real)
    do_rollup_usage(SEP.start, SEP.end)

    assert DailyUsage.objects.get(organization=alpha.organization, day=date(2026, 9, 20)).quantity == Decimal("1.000")
    assert MonthlyUsage.objects.get(organization=alpha.organization, metric="audio_in_seconds").quantity == Decimal(
        "21.000"
    )


@pytest.mark.django_db
def test_an_empty_period_is_refused():
    with pytest.raises(ValueError, match="empty"):
        do_rollup_usage(date(2026, 9, 2), date(2026, 9, 1))


@pytest.mark.django_db
def test_the_scheduled_rollup_catches_up_and_marks_complete_days(alpha):
    add_voice_minutes(alpha.organization, 10, _at(3))
    add_voice_minutes(alpha.organization, 5, _at(20, 8))

    result = do_rollup_recent_usage(now=_at(20, 9))

    assert result.start == date(2026, 9, 3)  # first run: from the earliest event
    assert RollupState.objects.get().complete_before == date(2026, 9, 20)
    assert DailyUsage.objects.filter(day=date(2026, 9, 3)).count() == 2

    again = do_rollup_recent_usage(now=_at(25, 9))  # beat was down for five days
    assert again.start == date(2026, 9, 20)
    assert RollupState.objects.get().complete_before == date(2026, 9, 25)


@pytest.mark.django_db
def test_live_usage_is_complete_roll_up_days_plus_raw_events_since(alpha):
    add_voice_minutes(alpha.organization, 10, _at(3))
    add_voice_minutes(alpha.organization, 5, _at(20, 8))
    do_rollup_recent_usage(now=_at(20, 9))
    add_voice_minutes(alpha.organization, 2, _at(20, 10))  # after the roll-up, today: read raw
    add_event(alpha.organization, "llm_input_tokens", 300, _at(20, 11), channel="text")
    add_event(alpha.organization, "llm_input_tokens", 999, _at(20, 11), channel="voice")  # voice tokens: in minutes

    usage = period_usage(alpha.organization.pk, SEP)

    assert usage.voice_seconds == Decimal(17 * 60)  # 10 from DailyUsage, 5 + 2 from today's events
    assert usage.text_tokens == 300
    assert period_usage(alpha.organization.pk, Period(date(2026, 10, 1), date(2026, 11, 1))).voice_seconds == 0


@pytest.mark.django_db
def test_a_rollup_chunk_boundary_keeps_days_whole(alpha):
    for day in range(1, 31):
        add_event(alpha.organization, "session", 1, _at(day, 23))
    do_rollup_usage(SEP.start, SEP.end)

    assert DailyUsage.objects.count() == 30
    assert MonthlyUsage.objects.get().quantity == 30
    assert SEP.end - SEP.start == timedelta(days=30)
