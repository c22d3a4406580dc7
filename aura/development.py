"""A source checkout as a development machine: what `make run` and `manage.py` share.

Outside production (``AURA_ENV`` unset means development here; the Docker image sets
``AURA_ENV=production``), commands use the development settings and the embedded PostgreSQL and
Redis under ``.data/dev``: started when they are not running, reused when ``make run`` or another
command already runs them. ``DATABASE_URL`` / ``REDIS_URL`` select real servers instead. Nothing
here imports Django: it runs before settings are read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aura.embedded_services import EmbeddedServices, ensure_services

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 8000


def data_dir() -> Path:
    """Where development data lives: ``AURA_DATA_DIR``, by default ``.data`` in the checkout."""
    return Path(os.environ.get("AURA_DATA_DIR") or ROOT / ".data")


def is_development() -> bool:
    return os.environ.setdefault("AURA_ENV", "development") == "development"


def use_development_environment(*, announce: bool = True) -> EmbeddedServices | None:
    """Export the development environment and start or reuse the embedded servers.

    Returns None (and changes nothing else) when ``AURA_ENV`` names another environment, so
    production keeps refusing to start without its secrets.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.base")
    if not is_development():
        return None
    port = os.environ.get("AURA_PORT", str(DEFAULT_PORT))
    os.environ.setdefault("AURA_PLATFORM_URL", f"http://localhost:{port}")
    services_dir = data_dir() / "dev"
    started = ensure_services(services_dir)
    if announce:
        # stderr: commands that write to stdout (spectacular, dumpdata) keep their output clean.
        where = services_dir.relative_to(ROOT) if services_dir.is_relative_to(ROOT) else services_dir
        database = f"embedded ({where}/postgres)" if started.database_url else "DATABASE_URL"
        redis = f"embedded ({where}/redis)" if started.redis_url else "REDIS_URL"
        print(f"AURA development: PostgreSQL {database}, Redis {redis}", file=sys.stderr, flush=True)
    return started
