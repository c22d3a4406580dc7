"""Billing periods: calendar months in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in days; ``end`` is the first day of the next month."""

    start: date
    end: date

    @classmethod
    def month_of(cls, day: date | datetime) -> Period:
        if isinstance(day, datetime):
            day = day.astimezone(UTC).date()
        start = day.replace(day=1)
        return cls(start, next_month(start))

    @property
    def starts_at(self) -> datetime:
        return midnight(self.start)

    @property
    def ends_at(self) -> datetime:
        return midnight(self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def previous(self) -> Period:
        return Period.month_of(self.start - timedelta(days=1))

    def label(self) -> str:
        return f"{self.start:%B %Y}"


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def months_between(start: date, end: date) -> list[Period]:
    """Every month that overlaps the days [start, end)."""
    periods, period = [], Period.month_of(start)
    while period.start < end:
        periods.append(period)
        period = Period(period.end, next_month(period.end))
    return periods
