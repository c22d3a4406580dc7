"""What every benchmark shares: figures as p50/p95/max, and a fresh platform with one organization."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def summary(values: list[float], digits: int = 1) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered), digits),
        "p95": round(p95, digits),
        "max": round(ordered[-1], digits),
        "n": len(ordered),
    }


def fresh_platform(name: str, **env: str) -> Any:
    """Embedded PostgreSQL and Redis under .data/bench-<name> (new each run unless DATABASE_URL is set),
    Django set up with ``env`` as defaults, the platform migrated, and the organization "bench" created."""
    sys.path.insert(0, str(ROOT))
    data_dir = ROOT / ".data" / f"bench-{name}"
    if not os.environ.get("DATABASE_URL") and data_dir.exists():
        shutil.rmtree(data_dir)
    for key, value in {
        "AURA_ENV": "development",
        "AURA_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "aura.settings.base",
        **env,
    }.items():
        os.environ.setdefault(key, value)
    from aura.embedded_services import ensure_services

    ensure_services(data_dir, durable=False)
    import django

    django.setup()
    from django.core.management import call_command

    from tenants.actions import NewOrganization, do_create_organization

    call_command("setup_platform", verbosity=0)
    return do_create_organization(
        NewOrganization(name="Bench", slug="bench", admin_email="bench@bench.example", admin_password="bench-pass-123")
    )
