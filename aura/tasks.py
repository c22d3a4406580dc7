"""Celery jobs that run a workflow spanning apps (schedules in settings.CELERY_BEAT_SCHEDULE). The task
names stay those the schedule and the broker already know."""

from __future__ import annotations

from celery import shared_task

from aura.workflows.retention import apply_retention as apply_retention_everywhere


@shared_task(name="conversations.apply_retention")
def apply_retention() -> dict[str, int]:
    """Delete conversations (and phone calls) older than each organization's retention period."""
    return apply_retention_everywhere()
