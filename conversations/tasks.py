"""Celery beat job: each organization's retention period (schedule in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task
from django_tenants.utils import tenant_context

from conversations.actions import do_apply_retention
from telephony.actions import do_apply_call_retention
from tenants.models import Organization


@shared_task(name="conversations.apply_retention")
def apply_retention() -> dict[str, int]:
    """Delete conversations (and phone calls) older than each organization's retention period. Safe to
    run twice."""
    deleted: dict[str, int] = {}
    for organization in Organization.objects.exclude(schema_name="public").filter(
        is_ready=True, retention_days__isnull=False
    ):
        with tenant_context(organization):
            deleted[organization.slug] = do_apply_retention()
        do_apply_call_retention(organization=organization)
    return deleted
