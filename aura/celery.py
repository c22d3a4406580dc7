"""The Celery app. Tasks queued inside a tenant's context run in that tenant's schema
(tenant-schemas-celery carries the schema name in a message header)."""

from __future__ import annotations

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.base")

app = CeleryApp("aura")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
