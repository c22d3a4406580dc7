"""Liveness and readiness probes."""

from __future__ import annotations

import time

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.shutdown import is_draining


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and answering. Checks nothing else, so a dependency outage does not restart it."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: PostgreSQL and Redis answer, and the public schema has every migration.
    A process that is shutting down is not ready: the load balancer stops sending it sessions."""
    if is_draining():
        return JsonResponse({"status": "draining", "checks": {}}, status=503)
    checks: dict[str, dict[str, object]] = {}
    checks["database"] = _timed(_check_database)
    checks["redis"] = _timed(_check_redis)
    if checks["database"]["ok"]:
        checks["migrations"] = _timed(_check_migrations)
    ready = all(check["ok"] for check in checks.values()) and "migrations" in checks
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


def _timed(check: object) -> dict[str, object]:
    started = time.perf_counter()
    try:
        detail = check()  # type: ignore[operator]
        result: dict[str, object] = {"ok": True}
        if detail:
            result["detail"] = detail
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure, it does not raise
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    from django.core.cache import caches

    # The platform cache's client: on the process's shared pool (core.redis), a ping, not a cache read.
    client = caches["platform"]._cache.get_client(write=True)  # noqa: SLF001
    client.ping()


def _check_migrations() -> str | None:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        raise RuntimeError(f"{len(plan)} migrations not applied")
    return None
