"""Billing at scale: load N usage events across 1,000 organizations, then time the roll-up and the
staff dashboard's queries.

    .venv/bin/python -m bench.billing --events 1000000 --json

Uses its own embedded PostgreSQL/Redis under .data/bench-billing (wiped first) unless DATABASE_URL
and REDIS_URL are set. Organizations are public-schema rows only (billing never enters a tenant's
schema); events are spread over the last 365 days, heavier for a few organizations, and written
with COPY (psycopg 3 ``cursor.copy``), each with its cost from the seeded price list.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# metric, weight, (low, high) quantity, kind of provider
METRICS = [
    ("session", 1, (1, 1), None),
    ("audio_in_seconds", 3, (0.5, 12.0), "stt"),
    ("stt_seconds", 3, (0.5, 12.0), "stt"),
    ("audio_out_seconds", 3, (1.0, 20.0), "tts"),
    ("tts_characters", 3, (20, 400), "tts"),
    ("llm_input_tokens", 3, (200, 4000), "llm"),
    ("llm_output_tokens", 3, (10, 300), "llm"),
    ("tool_calls", 1, (1, 2), None),
]
PROVIDERS = {
    "stt": [("openai", "gpt-4o-mini-transcribe"), ("local", "pocketsphinx-en-us"), ("openai", "whisper-1")],
    "tts": [("openai", "gpt-4o-mini-tts"), ("openai", "tts-1"), ("simulated", "simulated-tts")],
    "llm": [("openai", "gpt-4o-mini"), ("xai", "grok-3-mini"), ("openai", "gpt-4.1"), ("xai", "grok-4")],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--organizations", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7, help="dashboard timings: runs after one warm-up")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    if args.events < 1 or args.organizations < 1:
        parser.error("--events and --organizations must be positive")

    sys.path.insert(0, str(ROOT))
    from aura.embedded_services import ensure_services

    data_dir = ROOT / ".data" / "bench-billing"
    if not os.environ.get("DATABASE_URL") and data_dir.exists():
        shutil.rmtree(data_dir)
    os.environ.setdefault("AURA_ENV", "development")
    os.environ.setdefault("AURA_DATA_DIR", str(data_dir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.base")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    ensure_services(data_dir)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("setup_platform", verbosity=0)
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    organizations = _organizations(args.organizations, now)
    t0 = time.perf_counter()
    first_at = _load_events(args.events, organizations, rng, now)
    load_s = time.perf_counter() - t0

    from django.db import connection

    from billing.actions import do_draft_invoices, do_rollup_recent_usage, do_rollup_usage
    from billing.models import DailyUsage, MonthlyUsage
    from billing.periods import Period

    start, end = first_at.date(), now.date() + timedelta(days=1)
    t0 = time.perf_counter()
    do_rollup_usage(start, end)
    rollup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    do_rollup_usage(start, end)
    rerun_s = time.perf_counter() - t0
    do_rollup_recent_usage(now=now)  # the hourly job's first run catches up from the earliest event …
    t0 = time.perf_counter()
    do_rollup_recent_usage(now=now + timedelta(hours=1))  # … then each run redoes yesterday, today and this month
    hourly_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    invoices = do_draft_invoices(Period.month_of(now).previous(), now=now)
    invoices_s = time.perf_counter() - t0

    with connection.cursor() as cursor:  # what autovacuum does after the roll-up: index-only scans need it
        cursor.execute("VACUUM ANALYZE billing_dailyusage, billing_monthlyusage, billing_invoice")
    dashboard_ms, page_ms, quota_ms = _time_dashboard(args.repeat, organizations)
    result = {
        "events": args.events,
        "organizations": args.organizations,
        "load_s": round(load_s, 2),
        "rollup_s": round(rollup_s, 2),
        "rollup_rerun_s": round(rerun_s, 2),
        "rollup_hourly_s": round(hourly_s, 3),
        "daily_rows": DailyUsage.objects.count(),
        "monthly_rows": MonthlyUsage.objects.count(),
        "invoices": invoices.drafted + invoices.finalized,
        "invoices_s": round(invoices_s, 2),
        "dashboard_ms": round(statistics.median(dashboard_ms), 1),
        "dashboard_ms_max": round(max(dashboard_ms), 1),
        "dashboard_page_ms": round(statistics.median(page_ms), 1),
        "quota_check_ms": round(statistics.median(quota_ms), 2),
    }
    print(
        f"{args.events} events across {args.organizations} organizations: loaded in {result['load_s']} s, "
        f"rolled up in {result['rollup_s']} s (again: {result['rollup_rerun_s']} s); "
        f"dashboard queries {result['dashboard_ms']} ms, whole page {result['dashboard_page_ms']} ms"
    )
    if args.json:
        print(json.dumps(result))
    return 0


def _organizations(count: int, now: datetime) -> list[int]:
    """Public-schema rows only, each subscribed: half Starter, a third Growth, the rest on a trial;
    one in ten changed plan six months ago."""
    from billing.models import Plan, PlanPeriod, Subscription
    from tenants.models import Organization

    Organization.objects.bulk_create(
        Organization(name=f"Bench {n:04d}", slug=f"bench-{n:04d}", schema_name=f"t_bench_{n:04d}", is_ready=True)
        for n in range(count)
    )
    plans = {plan.slug: plan for plan in Plan.objects.all()}
    year_ago = now - timedelta(days=365)
    subscriptions, periods = [], []
    ids = list(Organization.objects.filter(slug__startswith="bench-").order_by("pk").values_list("pk", flat=True))
    for n, organization_id in enumerate(ids):
        plan = plans["starter"] if n % 6 < 3 else plans["growth"] if n % 6 < 5 else plans["trial"]
        subscriptions.append(
            Subscription(organization_id=organization_id, plan=plan, status="active", started_at=year_ago)
        )
    Subscription.objects.bulk_create(subscriptions)
    for subscription in Subscription.objects.filter(organization_id__in=ids):
        if subscription.organization_id % 10 == 0 and subscription.plan.slug != "trial":
            change = now - timedelta(days=180)
            first = PlanPeriod(subscription=subscription, plan=plans["starter"], starts_at=year_ago, ends_at=change)
            periods.append(first)
            periods.append(PlanPeriod(subscription=subscription, plan=subscription.plan, starts_at=change))
        else:
            periods.append(PlanPeriod(subscription=subscription, plan=subscription.plan, starts_at=year_ago))
    PlanPeriod.objects.bulk_create(periods)
    return ids


def _load_events(count: int, organizations: list[int], rng: random.Random, now: datetime) -> datetime:
    """COPY ``count`` events; returns when the earliest happened."""
    from django.db import connection

    from billing.queries import prices_at

    keys = {(p, m, metric) for metric, _, _, kind in METRICS if kind for p, m in PROVIDERS[kind]}
    prices = prices_at(keys, now)
    # A few organizations do most of the talking (Pareto-like weights).
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(organizations))]
    org_ids = rng.choices(organizations, weights=weights, k=count)
    metric_rows = rng.choices(METRICS, weights=[m[1] for m in METRICS], k=count)
    year_s = 365 * 86400
    offsets = sorted(rng.random() * year_s for _ in range(count))
    start = now - timedelta(seconds=year_s)
    columns = (
        "organization_id, metric, quantity, channel, provider, model, assistant_id, conversation_id, "
        "occurred_at, recorded_at, cost, idempotency_key"
    )
    recorded = now.isoformat()
    with connection.cursor() as cursor, cursor.connection.cursor() as raw:
        with raw.copy(f"COPY billing_usageevent ({columns}) FROM STDIN") as copy:
            for n in range(count):
                metric, _, (low, high), kind = metric_rows[n]
                provider, model = rng.choice(PROVIDERS[kind]) if kind else ("", "")
                if isinstance(low, int):
                    quantity = Decimal(rng.randint(low, high))
                else:
                    quantity = Decimal(round(rng.uniform(low, high), 3)).quantize(Decimal("0.001"))
                price = prices.get((provider, model, metric))
                cost = price.cost(quantity) if price else Decimal(0)
                channel = "text" if kind == "llm" and n % 5 == 0 else "voice"
                at = start + timedelta(seconds=offsets[n])
                copy.write_row(
                    (org_ids[n], metric, quantity, channel, provider, model, 1, None, at, recorded, cost, f"bench:{n}")
                )
        cursor.execute("ANALYZE billing_usageevent")
    return start


def _time_dashboard(repeat: int, organizations: list[int]) -> tuple[list[float], list[float], list[float]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from billing.dashboards import platform_overview
    from billing.queries import quota_status

    platform_overview()  # warm-up: connections, caches, query plans
    queries = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        platform_overview()
        queries.append((time.perf_counter() - t0) * 1000)
    user_model = get_user_model()
    if not user_model.objects.filter(username="bench-staff").exists():
        user_model.objects.create_superuser("bench-staff", "staff@bench.example", "bench-password-123")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user_model.objects.get(username="bench-staff"))
    pages = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        response = client.get("/admin/billing/")
        pages.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"the dashboard answered {response.status_code}")
    quota = []
    for organization_id in organizations[: repeat * 3]:  # the heaviest organizations come first
        t0 = time.perf_counter()
        quota_status(organization_id)
        quota.append((time.perf_counter() - t0) * 1000)
    return queries, pages[1:], quota


if __name__ == "__main__":
    sys.exit(main())
