"""manage.py billing_run <rollup|invoices|alerts> --from YYYY-MM-DD --to YYYY-MM-DD

Re-runs a billing job for a period (both dates included). Every job is idempotent: running it
again gives the same roll-ups, the same invoices (finalized ones never change), and no alert twice.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing import actions
from billing.periods import months_between


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"“{value}” is not a date; use YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Re-run a billing job (rollup, invoices or alerts) for the days --from … --to (inclusive)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", choices=["rollup", "invoices", "alerts"])
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="last day (included), YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        start, last = _day(options["start"]), _day(options["end"])
        if last < start:
            raise CommandError(f"--to ({last}) is before --from ({start}).")
        end = last + timedelta(days=1)
        job = options["job"]
        if job == "rollup":
            result = actions.do_rollup_usage(start, end)
            self.stdout.write(
                f"rolled up {start} … {last}: {result.daily_rows} daily rows, {result.monthly_rows} monthly rows"
            )
            return
        now = timezone.now()
        for period in months_between(start, end):
            if job == "invoices":
                if period.ends_at > now:
                    self.stdout.write(f"{period.label()}: not over yet, no invoice (the admin shows the estimate)")
                    continue
                run = actions.do_draft_invoices(period, now=now)
                self.stdout.write(
                    f"{period.label()}: {run.drafted} drafted, {run.finalized} finalized, {run.unchanged} already final"
                )
            else:
                alerts = actions.do_send_usage_alerts(period, now=now)
                self.stdout.write(f"{period.label()}: {alerts.created} new alerts, {alerts.sent} sent")
