"""The Celery app. Tasks queued inside a tenant's context run in that tenant's schema
(tenant-schemas-celery carries the schema name in a message header)."""

from __future__ import annotations

import os

from celery import signals
from prometheus_client import Counter
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.base")

app = CeleryApp("aura")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# --- Metrics: task failures counted in each worker process; the worker serves them over HTTP when
# AURA_WORKER_METRICS_PORT is set (prefork children report through PROMETHEUS_MULTIPROC_DIR).
TASK_FAILURES = Counter("aura_celery_task_failures_total", "Celery tasks that raised", ["task"])


@signals.task_failure.connect
def _count_failure(sender: object = None, **_: object) -> None:
    TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()


@signals.worker_ready.connect
def _serve_metrics(**_: object) -> None:
    port = os.environ.get("AURA_WORKER_METRICS_PORT")
    if not port:
        return
    import prometheus_client
    from prometheus_client import multiprocess

    registry = prometheus_client.REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    prometheus_client.start_http_server(int(port), registry=registry)
