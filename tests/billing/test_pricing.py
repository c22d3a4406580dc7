"""Invoice arithmetic against hand-computed cases (billing.pricing, no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.pricing import PlanTerms, Segment, UsageTotals, allowance, compute_charges

NOV_START, DEC_START = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)  # 30 days
MID_NOV = datetime(2026, 11, 16, tzinfo=UTC)

STARTER = PlanTerms("Starter", Decimal("49"), 500, Decimal("0.12"), 2_000_000, Decimal("0.004"), hard_cap=False)
GROWTH = PlanTerms("Growth", Decimal("299"), 4000, Decimal("0.09"), 20_000_000, Decimal("0.003"), hard_cap=False)
TRIAL = PlanTerms("Trial", Decimal("0"), 60, Decimal("0"), 200_000, Decimal("0"), hard_cap=True)


def charges(segments, usage, tax="0"):
    return compute_charges(segments, usage, start=NOV_START, end=DEC_START, tax_rate=Decimal(tax))


def minutes(n: int | str) -> Decimal:
    return Decimal(n) * 60


def test_a_whole_month_within_the_allowance_is_the_fee_plus_tax():
    result = charges([Segment(STARTER, NOV_START, DEC_START)], UsageTotals(voice_seconds=minutes(400)), tax="0.20")

    assert [(line.kind, line.amount) for line in result.lines] == [
        ("base_fee", Decimal("49.00")),
        ("included_minutes", Decimal("0.00")),
    ]
    assert result.lines[1].quantity == Decimal("400.000")
    assert (result.subtotal, result.tax, result.total) == (Decimal("49.00"), Decimal("9.80"), Decimal("58.80"))


def test_overage_is_charged_per_minute_past_the_allowance():
    # 530.5 minutes on Starter: 30.5 over at 0.12 = 3.66
    result = charges([Segment(STARTER, NOV_START, DEC_START)], UsageTotals(voice_seconds=Decimal("31830")))

    overage = [line for line in result.lines if line.kind == "overage_minutes"]
    assert overage[0].quantity == Decimal("30.500") and overage[0].amount == Decimal("3.66")
    assert result.total == Decimal("52.66")


def test_a_plan_change_mid_month_prorates_fee_and_allowance_and_charges_the_last_plans_overage():
    # Starter 1–15 Nov, Growth from 16 Nov 00:00: fees 49 × 15/30 = 24.50 and 299 × 15/30 = 149.50;
    # allowance 500 × ½ + 4000 × ½ = 2250 minutes; 2400 used → 150 over at Growth's 0.09 = 13.50.
    segments = [Segment(STARTER, NOV_START, MID_NOV), Segment(GROWTH, MID_NOV, DEC_START)]
    result = charges(segments, UsageTotals(voice_seconds=minutes(2400)), tax="0.20")

    assert [(line.kind, line.amount) for line in result.lines] == [
        ("base_fee", Decimal("24.50")),
        ("base_fee", Decimal("149.50")),
        ("included_minutes", Decimal("0.00")),
        ("overage_minutes", Decimal("13.50")),
    ]
    assert result.allowance.minutes == Decimal("2250.000")
    assert (result.subtotal, result.tax, result.total) == (Decimal("187.50"), Decimal("37.50"), Decimal("225.00"))


def test_a_change_at_an_odd_moment_prorates_by_the_second():
    change = datetime(2026, 11, 10, 12, tzinfo=UTC)  # 9.5 days of 30 on Starter
    result = charges([Segment(STARTER, NOV_START, change), Segment(GROWTH, change, DEC_START)], UsageTotals())

    fees = [line.amount for line in result.lines if line.kind == "base_fee"]
    assert fees == [Decimal("15.52"), Decimal("204.32")]  # 49 × 9.5/30 = 15.516…, 299 × 20.5/30 = 204.316…
    assert result.allowance.minutes == Decimal("2891.667")  # 500 × 9.5/30 + 4000 × 20.5/30


def test_trial_days_carry_no_fee_but_their_allowance():
    trial_end = datetime(2026, 11, 7, tzinfo=UTC)  # 6 trial days, 24 paid days of Starter
    segments = [Segment(STARTER, NOV_START, trial_end, trial=True), Segment(STARTER, trial_end, DEC_START)]
    result = charges(segments, UsageTotals())

    assert [(line.kind, line.amount) for line in result.lines] == [("base_fee", Decimal("39.20"))]  # 49 × 24/30
    assert result.allowance.minutes == Decimal("500.000")


def test_a_cancellation_ends_fee_and_allowance():
    result = charges([Segment(STARTER, NOV_START, MID_NOV)], UsageTotals(voice_seconds=minutes(300)))

    assert result.lines[0].amount == Decimal("24.50")
    assert result.allowance.minutes == Decimal("250.000")
    assert [line.amount for line in result.lines if line.kind == "overage_minutes"] == [Decimal("6.00")]  # 50 × 0.12


def test_under_a_hard_cap_the_overshoot_is_shown_and_not_charged():
    result = charges([Segment(TRIAL, NOV_START, DEC_START)], UsageTotals(voice_seconds=minutes(61)))

    over = [line for line in result.lines if line.kind == "overage_minutes"]
    assert over[0].quantity == Decimal("1.000") and over[0].amount == Decimal("0.00")
    assert "not charged" in over[0].description
    assert result.total == Decimal("0.00")


def test_text_tokens_past_the_allowance_are_charged_per_thousand():
    # 2,500,500 tokens on Starter: 500,500 over at 0.004 per 1k = 2.002 → 2.00
    result = charges([Segment(STARTER, NOV_START, DEC_START)], UsageTotals(text_tokens=2_500_500))

    over = [line for line in result.lines if line.kind == "overage_text_tokens"]
    assert over[0].quantity == Decimal(500_500) and over[0].amount == Decimal("2.00")


def test_tax_rounds_half_up_on_the_subtotal():
    plan = PlanTerms("Odd", Decimal("10.05"), 0, Decimal(0), 0, Decimal(0), hard_cap=False)
    result = charges([Segment(plan, NOV_START, DEC_START)], UsageTotals(), tax="0.10")

    assert result.tax == Decimal("1.01")  # 1.005 → 1.01
    assert result.total == Decimal("11.06")


def test_no_segment_means_nothing_to_charge():
    result = charges([], UsageTotals(voice_seconds=minutes(5)))

    assert result.total == Decimal("0.00")


@pytest.mark.parametrize(
    ("start", "end", "tax", "message"),
    [
        (DEC_START, NOV_START, "0", "must end after"),
        (NOV_START, DEC_START, "-0.1", "negative"),
    ],
)
def test_bad_input_is_refused_clearly(start, end, tax, message):
    with pytest.raises(ValueError, match=message):
        compute_charges([], UsageTotals(), start=start, end=end, tax_rate=Decimal(tax))


def test_a_segment_cannot_end_before_it_starts():
    with pytest.raises(ValueError, match="before it starts"):
        Segment(STARTER, DEC_START, NOV_START)


def test_allowance_outside_the_period_counts_nothing():
    assert allowance([Segment(STARTER, DEC_START, datetime(2027, 1, 1, tzinfo=UTC))], NOV_START, DEC_START).minutes == 0


def test_phone_minutes_are_billed_by_direction_at_the_last_plans_prices():
    # 90 s inbound and 10 min outbound on a plan with 0.03 / 0.04 a phone minute: 0.045 → 0.05 and 0.40
    phoned = PlanTerms(
        "Phone",
        Decimal("49"),
        500,
        Decimal("0.12"),
        0,
        Decimal(0),
        hard_cap=False,
        phone_in_per_minute=Decimal("0.03"),
        phone_out_per_minute=Decimal("0.04"),
    )

    result = charges(
        [Segment(phoned, NOV_START, DEC_START)],
        UsageTotals(phone_in_seconds=Decimal(90), phone_out_seconds=minutes(10)),
    )

    phone = [(line.kind, line.quantity, line.unit_price, line.amount) for line in result.lines if "phone" in line.kind]
    assert phone == [
        ("phone_inbound", Decimal("1.500"), Decimal("0.03"), Decimal("0.05")),
        ("phone_outbound", Decimal("10.000"), Decimal("0.04"), Decimal("0.40")),
    ]
    assert result.total == Decimal("49.45")
    assert not [
        line for line in charges([Segment(phoned, NOV_START, DEC_START)], UsageTotals()).lines if "phone" in line.kind
    ]
