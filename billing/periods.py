"""Billing periods: calendar months in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


class _Days:
    """Whole UTC days [start, end): their bounds as instants and their count (shared by the periods below)."""

    __slots__ = ()
    start: date
    end: date

    @property
    def starts_at(self) -> datetime:
        return midnight(self.start)

    @property
    def ends_at(self) -> datetime:
        return midnight(self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True, slots=True)
class Period(_Days):
    """[start, end) in days; ``end`` is the first day of the next month."""

    start: date
    end: date

    @classmethod
    def month_of(cls, day: date | datetime) -> Period:
        if isinstance(day, datetime):
            day = day.astimezone(UTC).date()
        start = day.replace(day=1)
        return cls(start, next_month(start))

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


REPORT_CHOICES = (
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("custom", "Custom"),
)
MAX_REPORT_DAYS = 366 * 2


@dataclass(frozen=True, slots=True)
class ReportPeriod(_Days):
    """The days [start, end) a staff report covers, chosen with the overview's period picker."""

    key: str
    start: date
    end: date

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def label(self) -> str:
        if self.key in ("this_month", "last_month") or (self.start.day == 1 and self.end == next_month(self.start)):
            return f"{self.start:%B %Y}"
        return f"{self.start:%d %b %Y} – {self.last_day:%d %b %Y}"

    def previous(self) -> ReportPeriod:
        """The period just before, to compare with: the previous month for a month, else as many days."""
        if self.start.day == 1 and self.end == next_month(self.start):
            before = Period.month_of(self.start - timedelta(days=1))
            return ReportPeriod("previous", before.start, before.end)
        return ReportPeriod("previous", self.start - timedelta(days=self.days), self.start)

    def query(self) -> str:
        """The query string that selects this period again (links from figures keep the period)."""
        if self.key == "custom":
            return f"period=custom&from={self.start:%Y-%m-%d}&to={self.last_day:%Y-%m-%d}"
        return f"period={self.key}"

    @classmethod
    def parse(cls, params: dict[str, str], today: date) -> ReportPeriod:
        """From ``?period=…`` (and ``from``/``to``, both days included, for ``custom``). Raises ValueError."""
        key = params.get("period") or "this_month"
        this = Period.month_of(today)
        if key == "this_month":
            return cls(key, this.start, this.end)
        if key == "last_month":
            last = this.previous()
            return cls(key, last.start, last.end)
        if key in ("30d", "90d"):
            days = int(key[:-1])
            return cls(key, today - timedelta(days=days - 1), today + timedelta(days=1))
        if key == "custom":
            first = date.fromisoformat(params.get("from", ""))
            last_day = date.fromisoformat(params.get("to", ""))
            if last_day < first:
                raise ValueError("the period ends before it starts")
            if (last_day - first).days >= MAX_REPORT_DAYS:
                raise ValueError(f"a period is at most {MAX_REPORT_DAYS} days")
            return cls(key, first, last_day + timedelta(days=1))
        raise ValueError(f"unknown period {key!r}")
