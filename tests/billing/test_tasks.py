"""The beat jobs: scheduled in settings, thin, and idempotent when beat fires them twice."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import timezone

from billing import tasks
from billing.models import DailyUsage, RollupState
from tests.billing.conftest import add_voice_minutes


def test_every_job_is_on_the_beat_schedule():
    scheduled = {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"].startswith("billing.")
    }
    assert scheduled == {"billing.rollup_usage", "billing.draft_invoices", "billing.send_usage_alerts"}
    assert {tasks.rollup_usage.name, tasks.draft_invoices.name, tasks.send_usage_alerts.name} == scheduled


@pytest.mark.django_db
def test_the_jobs_run_twice_without_counting_twice(alpha):
    add_voice_minutes(alpha.organization, 2, timezone.now())

    first = tasks.rollup_usage.apply().get()
    tasks.rollup_usage.apply().get()
    tasks.send_usage_alerts.apply().get()
    invoices = tasks.draft_invoices.apply().get()

    assert first["daily_rows"] == 2
    assert sum(row.quantity for row in DailyUsage.objects.all()) == 120
    assert RollupState.objects.get().last_run_at is not None
    assert invoices["period"] < str(timezone.now().date())
