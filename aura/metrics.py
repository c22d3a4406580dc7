"""GET /metrics: Prometheus text format for this process, or for every process sharing
``PROMETHEUS_MULTIPROC_DIR`` (several daphne processes in one container report as one target).

Values that live in shared stores are read at scrape time, so every process reports the same truth:
provider breakers (Redis hash) and Celery queue depth (the broker's list lengths).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import prometheus_client
import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
CELERY_QUEUES = ("celery",)


class SharedStateCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        from voice.router.health import shared_health

        breakers = GaugeMetricFamily(
            "aura_provider_breaker_open", "1 while a provider:model circuit breaker is open", labels=["provider_model"]
        )
        queues = GaugeMetricFamily("aura_celery_queue_depth", "Tasks waiting in the broker", labels=["queue"])
        try:
            now = time.time()
            for key, health in shared_health().items():
                breakers.add_metric([key], 1.0 if health.effective_state(now) == "open" else 0.0)
            with redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1.0) as broker:
                for queue in CELERY_QUEUES:
                    queues.add_metric([queue], float(broker.llen(queue)))
        except (RedisError, OSError) as exc:
            logger.warning("metrics: shared state unavailable: %s", exc)
        yield breakers
        yield queues


def registry() -> prometheus_client.CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
    else:
        collected = prometheus_client.CollectorRegistry()
        collected.register(_ProcessRegistry())
    collected.register(SharedStateCollector())
    return collected


class _ProcessRegistry(Collector):
    """This process's default registry, re-exposed inside the per-scrape registry."""

    def collect(self) -> Iterator[object]:
        yield from prometheus_client.REGISTRY.collect()


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        prometheus_client.generate_latest(registry()), content_type=prometheus_client.CONTENT_TYPE_LATEST
    )
