"""A task for the worker test only (loaded with ``celery worker --include``)."""

from __future__ import annotations

from django.db import connection

from aura.celery import app
from voice.models import Assistant


@app.task(name="tests.tenants.celery_probe.schema_and_assistants")
def schema_and_assistants() -> dict[str, object]:
    return {"schema": connection.schema_name, "assistants": list(Assistant.objects.values_list("name", flat=True))}
