"""GET /metrics: Prometheus text format for this process, or for every process sharing
``PROMETHEUS_MULTIPROC_DIR`` (several daphne processes in one container report as one target).

Values that live in shared stores are read at scrape time, so every process reports the same truth:
provider breakers (Redis hash) and Celery queue depth (the broker's list lengths).
"""

from __future__ import annotations

import hmac
import ipaddress
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


def _platform_or_address(host: str) -> bool:
    """An IP address (how Prometheus and probes address a process) or the platform's own host name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == settings.AURA_BASE_DOMAIN.lower()
    return True


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """Why this request gets no metrics, as the answer to give; None when it may have them."""
    token = settings.AURA_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return None
    host = _host_name(request)
    if settings.AURA_ENV == "production" or not _platform_or_address(host):
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    return None


def _host_name(request: HttpRequest) -> str:
    """The Host header without its port (not validated against ALLOWED_HOSTS: IPs are not listed there)."""
    raw = request.META.get("HTTP_HOST", "") or request.META.get("SERVER_NAME", "")
    raw = raw.strip().lower()
    if raw.startswith("["):
        return raw[1 : raw.find("]")] if "]" in raw else raw
    return raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw


def metrics_view(request: HttpRequest) -> HttpResponse:
    refused = metrics_refusal(request)
    if refused is not None:
        return refused
    return HttpResponse(
        prometheus_client.generate_latest(registry()), content_type=prometheus_client.CONTENT_TYPE_LATEST
    )
