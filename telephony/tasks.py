"""Celery: calls left open are ended (the beat schedule runs it every few minutes)."""

from __future__ import annotations

from celery import shared_task

from telephony.actions import do_end_stale_calls


@shared_task(name="telephony.end_stale_calls", ignore_result=True)
def end_stale_calls() -> int:
    return do_end_stale_calls()
