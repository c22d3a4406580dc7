"""Applying retention: each organization's conversations and phone calls older than its retention period."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from conversations.actions import do_apply_retention
from telephony.actions import do_apply_call_retention
from tenants.models import Organization


def apply_retention() -> dict[str, int]:
    """Delete conversations (and phone calls) older than each organization's retention period. Safe to
    run twice. Returns the conversations deleted, by organization slug."""
    deleted: dict[str, int] = {}
    for organization in Organization.objects.exclude(schema_name="public").filter(
        is_ready=True, retention_days__isnull=False
    ):
        with tenant_context(organization):
            deleted[organization.slug] = do_apply_retention()
        do_apply_call_retention(organization=organization)
    return deleted
