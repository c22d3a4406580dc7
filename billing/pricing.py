"""Invoice arithmetic, pure: plan segments and usage totals in, lines and totals out (docs/billing.md).

Rules:
- The monthly fee is prorated by the share of the period's seconds each plan was in force, and
  not charged while a trial runs or after a cancellation.
- The included minutes and tokens are prorated the same way and added up over the period, so a
  change of plan mid-month neither doubles nor loses the allowance.
- Usage past the allowance is charged at the overage prices of the plan in force at the end of
  the period (the last segment). Under a hard cap it is not charged: it is at most the turns
  that were already running when the cap was reached.
- Each line is rounded to the cent (half up); tax is the rate times the rounded subtotal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
MILLI = Decimal("0.001")
SIXTY = Decimal(60)
THOUSAND = Decimal(1000)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class PlanTerms:
    name: str
    monthly_fee: Decimal
    included_minutes: int
    overage_per_minute: Decimal
    included_text_tokens: int
    overage_per_1k_tokens: Decimal
    hard_cap: bool
    phone_in_per_minute: Decimal = Decimal(0)  # every phone minute is billed, none included
    phone_out_per_minute: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time under one plan; ``trial`` stretches carry no fee."""

    terms: PlanTerms
    start: datetime
    end: datetime
    trial: bool = False

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a segment cannot end ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True, slots=True)
class UsageTotals:
    voice_seconds: Decimal = Decimal(0)  # visitor audio + assistant audio, every channel
    text_tokens: int = 0  # LLM input + output tokens of text-only conversations
    phone_in_seconds: Decimal = Decimal(0)  # the carrier's minutes of phone calls, by direction
    phone_out_seconds: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Line:
    kind: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Allowance:
    minutes: Decimal
    text_tokens: Decimal


@dataclass(frozen=True, slots=True)
class Charges:
    lines: tuple[Line, ...]
    subtotal: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    allowance: Allowance
    used_minutes: Decimal


def clip(segments: Sequence[Segment], start: datetime, end: datetime) -> list[Segment]:
    """The parts of ``segments`` inside [start, end), in order."""
    clipped = []
    for segment in sorted(segments, key=lambda s: s.start):
        lo, hi = max(segment.start, start), min(segment.end, end)
        if hi > lo:
            clipped.append(Segment(segment.terms, lo, hi, segment.trial))
    return clipped


def allowance(segments: Sequence[Segment], start: datetime, end: datetime) -> Allowance:
    period_s = Decimal((end - start).total_seconds())
    minutes, tokens = Decimal(0), Decimal(0)
    for segment in clip(segments, start, end):
        share = Decimal((segment.end - segment.start).total_seconds()) / period_s
        minutes += segment.terms.included_minutes * share
        tokens += segment.terms.included_text_tokens * share
    return Allowance(minutes.quantize(MILLI, rounding=ROUND_HALF_UP), tokens.quantize(Decimal(1), ROUND_HALF_UP))


def compute_charges(
    segments: Sequence[Segment], usage: UsageTotals, *, start: datetime, end: datetime, tax_rate: Decimal
) -> Charges:
    if end <= start:
        raise ValueError("the period must end after it starts")
    if tax_rate < 0:
        raise ValueError("the tax rate cannot be negative")
    inside = clip(segments, start, end)
    period_s = Decimal((end - start).total_seconds())
    lines: list[Line] = []
    for segment in inside:
        if segment.trial or segment.terms.monthly_fee == 0:
            continue
        share = Decimal((segment.end - segment.start).total_seconds()) / period_s
        lines.append(
            Line(
                kind="base_fee",
                description=f"{segment.terms.name} plan, {_span(segment.start, segment.end, whole=share == 1)}",
                quantity=share.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
                unit="month",
                unit_price=segment.terms.monthly_fee,
                amount=money(segment.terms.monthly_fee * share),
            )
        )
    included = allowance(inside, start, end)
    used_minutes = (usage.voice_seconds / SIXTY).quantize(MILLI, rounding=ROUND_HALF_UP)
    last = inside[-1].terms if inside else None
    lines += _usage_lines(
        used=used_minutes,
        included=included.minutes,
        unit="minutes",
        label="Voice minutes",
        price=last.overage_per_minute if last else Decimal(0),
        per=Decimal(1),
        hard_cap=bool(last and last.hard_cap),
    )
    lines += _usage_lines(
        used=Decimal(usage.text_tokens),
        included=included.text_tokens,
        unit="tokens",
        label="Text conversation tokens",
        price=last.overage_per_1k_tokens if last else Decimal(0),
        per=THOUSAND,
        hard_cap=bool(last and last.hard_cap),
    )
    for kind, label, seconds, price in (
        ("phone_inbound", "Phone calls, inbound", usage.phone_in_seconds, last.phone_in_per_minute if last else 0),
        ("phone_outbound", "Phone calls, outbound", usage.phone_out_seconds, last.phone_out_per_minute if last else 0),
    ):
        if seconds > 0:
            minutes = (seconds / SIXTY).quantize(MILLI, rounding=ROUND_HALF_UP)
            price = Decimal(price)
            lines.append(Line(kind, label, minutes, "minutes", price, money(minutes * price)))
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    tax = money(subtotal * tax_rate)
    return Charges(
        lines=tuple(lines),
        subtotal=subtotal,
        tax_rate=tax_rate,
        tax=tax,
        total=subtotal + tax,
        allowance=included,
        used_minutes=used_minutes,
    )


def _usage_lines(
    *, used: Decimal, included: Decimal, unit: str, label: str, price: Decimal, per: Decimal, hard_cap: bool
) -> list[Line]:
    if used == 0:
        return []
    key = "minutes" if unit == "minutes" else "text_tokens"
    lines = [
        Line(
            kind=f"included_{key}",
            description=f"{label} included in the plan ({_number(included)} {unit})",
            quantity=min(used, included),
            unit=unit,
            unit_price=Decimal(0),
            amount=Decimal("0.00"),
        )
    ]
    over = used - included
    if over > 0:
        if hard_cap:
            lines.append(
                Line(f"overage_{key}", f"{label} past the hard cap (not charged)", over, unit, Decimal(0), CENT * 0)
            )
        else:
            per_label = " a minute" if unit == "minutes" else f" per {_number(per)} {unit}"
            lines.append(
                Line(
                    kind=f"overage_{key}",
                    description=f"{label} over the plan, at {_number(price)}{per_label}",
                    quantity=over,
                    unit=unit,
                    unit_price=price / per,
                    amount=money(over * price / per),
                )
            )
    return lines


def _number(value: Decimal) -> str:
    return f"{value.normalize():,f}"


def _span(start: datetime, end: datetime, *, whole: bool) -> str:
    if whole:
        return "whole month"
    days = Decimal((end - start).total_seconds()) / 86400
    return f"{start:%d %b %H:%M} – {end:%d %b %H:%M} UTC ({_number(days.quantize(CENT))} days)"


# ------------------------------------------------------------------ what people read
def whole(value: Decimal) -> int:
    """A number of minutes as people read it: whole, rounded half up."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def allowance_note(segments: Sequence[Segment], start: datetime, end: datetime, *, plan_minutes: int) -> str:
    """One line saying where this period's included minutes come from, in whole minutes.

    "Your plan includes 500 minutes a month; this period started on the 12th, so 395 minutes are
    included until the 1st." A full month says only the first half; a change of plan names each part.
    """
    inside = clip(segments, start, end)
    included = whole(allowance(inside, start, end).minutes)
    head = f"Your plan includes {plan_minutes:,} minutes a month"
    until = f"until the {ordinal(end.day)}"
    if not inside:
        return f"{head}; no plan is in force this period, so no minutes are included."
    plans = list(dict.fromkeys(segment.terms.name for segment in inside))
    if len(plans) > 1:
        shares = [whole(allowance([s], start, end).minutes) for s in inside]
        shares[-1] = included - sum(shares[:-1])  # the parts add up to the total shown
        parts = " + ".join(
            f"{share:,} under {s.terms.name} from the {ordinal(s.start.day)}"
            for share, s in zip(shares, inside, strict=True)
        )
        return f"{head}; the plan changed this period, so {included:,} minutes are included ({parts}) {until}."
    if inside[0].start <= start and inside[-1].end >= end:
        return f"{head}."
    if inside[0].start > start:
        return (
            f"{head}; this period started on the {ordinal(inside[0].start.day)}, "
            f"so {included:,} minutes are included {until}."
        )
    return f"{head}; the plan ends on the {ordinal(inside[-1].end.day)}, so {included:,} minutes are included."


@dataclass(frozen=True, slots=True)
class PlanChangePreview:
    """What a plan change does to this period's bill, shown before it is saved.

    ``remaining`` is the share of the period after the change (0 to 1). The old plan's fee for that
    share is credited (nothing while a trial runs: no fee was due), the new plan's is charged.
    """

    old_name: str
    new_name: str
    old_fee: Decimal
    new_fee: Decimal
    at: datetime
    period_end: datetime
    remaining: Decimal
    credit: Decimal
    charge: Decimal
    ends_trial: bool

    @property
    def net(self) -> Decimal:
        return self.charge - self.credit


def preview_plan_change(
    old: PlanTerms,
    new: PlanTerms,
    *,
    at: datetime,
    period_start: datetime,
    period_end: datetime,
    in_trial: bool,
) -> PlanChangePreview:
    """Proration of a change at ``at``, by the same rule as the invoice (share of the period's seconds)."""
    if not period_start <= at < period_end:
        raise ValueError("the change must fall inside the period")
    remaining = Decimal((period_end - at).total_seconds()) / Decimal((period_end - period_start).total_seconds())
    ends_trial = in_trial and new.monthly_fee > 0
    credit = Decimal("0.00") if in_trial else money(old.monthly_fee * remaining)
    charge = Decimal("0.00") if in_trial and not ends_trial else money(new.monthly_fee * remaining)
    return PlanChangePreview(
        old_name=old.name,
        new_name=new.name,
        old_fee=old.monthly_fee,
        new_fee=new.monthly_fee,
        at=at,
        period_end=period_end,
        remaining=remaining.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
        credit=credit,
        charge=charge,
        ends_trial=ends_trial,
    )
