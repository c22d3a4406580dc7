"""Celery: one task per delivery attempt, retried with back-off by re-queueing itself with a countdown.

Queued with the public schema's header: a delivery needs no tenant schema (and outlives a deleted one).
"""

from __future__ import annotations

import uuid

from celery import shared_task

from webhooks import actions


def enqueue_delivery(delivery_id: uuid.UUID | str, *, attempt: int, countdown: int = 0) -> None:
    deliver.apply_async(
        args=[str(delivery_id), attempt], countdown=countdown or None, headers={"_schema_name": "public"}
    )


# A receiver that trickles its answer a byte at a time defeats per-read socket time-outs: the soft
# limit ends such an attempt (the claim's retry time then brings the next one).
@shared_task(name="webhooks.deliver", acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=90)
def deliver(delivery_id: str, attempt: int) -> dict[str, object]:
    outcome = actions.do_attempt_delivery(delivery_id, attempt=attempt)
    if outcome.retry_in_s is not None:
        enqueue_delivery(delivery_id, attempt=attempt + 1, countdown=outcome.retry_in_s)
    return {"attempted": outcome.attempted, "succeeded": outcome.succeeded, "status": outcome.status_code}


@shared_task(name="webhooks.retry_due", ignore_result=True)
def retry_due() -> int:
    """Beat, every minute: re-queue attempts whose message was lost (a worker died, a broker restarted)."""
    due = actions.due_deliveries()
    for delivery_id, attempt in due:
        enqueue_delivery(delivery_id, attempt=attempt)
    return len(due)
