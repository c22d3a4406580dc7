"""How fast organizations are created and how fast a no-op migrate_schemas runs over all of them.

    .venv/bin/python -m bench.tenants --tenants 200 --json

Uses its own embedded PostgreSQL/Redis under .data/bench (wiped first) unless DATABASE_URL and
REDIS_URL are set, in which case it creates the organizations there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument(
        "--compare-stock",
        type=int,
        default=0,
        metavar="N",
        help="also time django-tenants' stock executor over the first N tenants",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from aura.embedded_services import ensure_services

    data_dir = ROOT / ".data" / "bench"
    if not os.environ.get("DATABASE_URL") and data_dir.exists():
        shutil.rmtree(data_dir)
    os.environ.setdefault("AURA_ENV", "development")
    os.environ.setdefault("AURA_DATA_DIR", str(data_dir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.base")
    ensure_services(data_dir)

    import django

    django.setup()
    from django.core.management import call_command

    from aura.workflows.organizations import open_organization
    from tenants.actions import NewOrganization

    started = time.perf_counter()
    call_command("setup_platform", verbosity=0)
    setup_s = time.perf_counter() - started

    create_s: list[float] = []
    for index in range(args.tenants):
        new = NewOrganization(
            name=f"Bench {index}",
            slug=f"bench-{index}",
            admin_email=f"admin{index}@bench.example",
            admin_password="bench-password-123",
        )
        t0 = time.perf_counter()
        open_organization(new)
        create_s.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    call_command("migrate_schemas", interactive=False, verbosity=0)
    migrate_noop_s = time.perf_counter() - t0

    result: dict[str, object] = {
        "tenants": args.tenants,
        "setup_platform_s": round(setup_s, 3),
        "create_s_p50": round(statistics.median(create_s), 4),
        "create_s_p95": round(percentile(create_s, 95), 4),
        "create_s_max": round(max(create_s), 4),
        "migrate_noop_s": round(migrate_noop_s, 3),
    }
    if args.compare_stock:
        schemas = [f"t_bench_{i}" for i in range(min(args.compare_stock, args.tenants))]
        t0 = time.perf_counter()
        for schema in schemas:  # naming one schema takes the stock path: Django's migrate on it
            call_command("migrate_schemas", schema_name=schema, interactive=False, verbosity=0)
        per_tenant = (time.perf_counter() - t0) / len(schemas)
        result["stock_migrate_noop_s_per_tenant"] = round(per_tenant, 4)
        result["stock_migrate_noop_s_estimate"] = round(per_tenant * args.tenants, 2)

    print(f"created {args.tenants} organizations: p50 {result['create_s_p50']} s, p95 {result['create_s_p95']} s")
    print(f"no-op migrate_schemas over all of them: {migrate_noop_s:.2f} s")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
