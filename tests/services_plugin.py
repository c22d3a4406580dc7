"""Loaded with ``-p`` before pytest-django reads settings: exports DATABASE_URL / REDIS_URL,
starting embedded PostgreSQL and Redis under .data/test when they are not set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports the `aura` package (its Celery module defaults to the deployment settings).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.test")

from aura.embedded_services import ensure_services

ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    os.environ.setdefault("AURA_ENV", "test")
    os.environ.setdefault("AURA_DATA_DIR", str(ROOT / ".data" / "test"))
    started = ensure_services(ROOT / ".data" / "test", durable=False)
    early_config.stash[_STARTED] = started


_STARTED = pytest.StashKey[object]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    started = config.stash.get(_STARTED, None)
    if started is None:
        return []
    database = "embedded PostgreSQL" if started.database_url else "DATABASE_URL"
    redis = "embedded Redis" if started.redis_url else "REDIS_URL"
    return [f"aura services: {database}, {redis}"]
