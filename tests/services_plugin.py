"""Loaded with ``-p`` before pytest-django reads settings: exports DATABASE_URL / REDIS_URL,
starting embedded PostgreSQL and Redis under .data/test when they are not set.

Under pytest-xdist (``make test`` runs ``-n``) the controller starts the servers and the workers
inherit its URLs; each worker then takes Redis databases of its own (queues, channel layer, caches)
and its own media and log folders. pytest-django gives each worker its own test database.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports the `aura` package (its Celery module defaults to the deployment settings).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.test")

from aura.embedded_services import ensure_services

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data" / "test"
# Redis has databases 0-15: 0 and 1 (queues, caches) for a run without workers, then two per worker.
_REDIS_DATABASES = 16


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    os.environ.setdefault("AURA_ENV", "test")
    os.environ.setdefault("AURA_DATA_DIR", str(DATA_DIR))
    started = ensure_services(DATA_DIR, durable=False)
    early_config.stash[_STARTED] = started
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        _isolate_worker(int(worker.removeprefix("gw")))


def worker_name() -> str:
    """``gw0``, ``gw1``… in a pytest-xdist worker; ``main`` in a run without workers."""
    return os.environ.get("PYTEST_XDIST_WORKER") or "main"


def _isolate_worker(number: int) -> None:
    """Another worker's tests must not flush this one's caches, take its Celery tasks or share its
    channel groups: move this worker (and every server process it starts) to its own Redis databases."""
    queues, caches = 2 + 2 * number, 3 + 2 * number
    if caches >= _REDIS_DATABASES:
        raise pytest.UsageError(f"at most {(_REDIS_DATABASES - 2) // 2} pytest-xdist workers (Redis databases)")
    base = os.environ["REDIS_URL"]
    os.environ["REDIS_URL"] = _redis_database(base, queues)
    os.environ["CACHE_REDIS_URL"] = _redis_database(base, caches)
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):  # unset, they follow REDIS_URL
        if os.environ.get(name):
            os.environ[name] = _redis_database(os.environ[name], queues)
    media = os.environ.get("AURA_MEDIA_ROOT") or str(Path(os.environ["AURA_DATA_DIR"]) / "media")
    os.environ["AURA_MEDIA_ROOT"] = str(Path(media) / worker_name())


def _redis_database(url: str, db: int) -> str:
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{db}" + (f"?{query}" if query else "")


_STARTED = pytest.StashKey[object]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    started = config.stash.get(_STARTED, None)
    if started is None:
        return []
    database = "embedded PostgreSQL" if started.database_url else "DATABASE_URL"
    redis = "embedded Redis" if started.redis_url else "REDIS_URL"
    return [f"aura services: {database}, {redis}"]
