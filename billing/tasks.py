"""Celery beat jobs (schedules in settings.CELERY_BEAT_SCHEDULE). Thin: the work is in billing.actions.

Each runs in the public schema and is safe to run twice, concurrently, or again after a crash.
"""

from __future__ import annotations

from celery import shared_task

from billing import actions


@shared_task(name="billing.rollup_usage")
def rollup_usage() -> dict[str, object]:
    result = actions.do_rollup_recent_usage()
    return {"start": str(result.start), "end": str(result.end), "daily_rows": result.daily_rows}


@shared_task(name="billing.draft_invoices")
def draft_invoices() -> dict[str, object]:
    run = actions.do_draft_due_invoices()
    return {"period": str(run.period.start), "drafted": run.drafted, "finalized": run.finalized}


@shared_task(name="billing.send_usage_alerts")
def send_usage_alerts() -> dict[str, int]:
    run = actions.do_send_current_alerts()
    return {"created": run.created, "sent": run.sent}
