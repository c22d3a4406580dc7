"""REST API request cost: key check, tenant switch, a list of conversations and a text reply.

    .venv/bin/python -m bench.api --conversations 2000 --json

In-process (Django's test client, no network): the server's own time per request, with the
embedded PostgreSQL and Redis. Prints figures, and with --json one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[round(0.95 * (len(ordered) - 1))], 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }


def timed(call, times: int) -> list[float]:
    values = []
    for _ in range(times):
        began = time.perf_counter()
        response = call()
        values.append((time.perf_counter() - began) * 1000)
        assert response.status_code < 300, (response.status_code, response.content[:300])
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    data_dir = ROOT / ".data" / "bench-api"
    if not os.environ.get("DATABASE_URL") and data_dir.exists():
        shutil.rmtree(data_dir)
    os.environ.setdefault("AURA_ENV", "development")
    os.environ.setdefault("AURA_DATA_DIR", str(data_dir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.base")
    os.environ.setdefault("AURA_API_RATE_PER_KEY_PER_MINUTE", "1000000")
    os.environ.setdefault("AURA_API_RATE_PER_ORGANIZATION_PER_MINUTE", "1000000")
    from aura.embedded_services import ensure_services

    ensure_services(data_dir, durable=False)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django_tenants.utils import tenant_context

    from billing.models import Subscription
    from conversations.models import Conversation
    from tenants.actions import NewOrganization, do_create_api_key, do_create_organization
    from voice.models import Assistant

    call_command("setup_platform", verbosity=0)
    organization = do_create_organization(
        NewOrganization(name="Bench", slug="bench", admin_email="bench@bench.example", admin_password="bench-pass-123")
    )
    Subscription.objects.filter(organization=organization).delete()  # no plan limits in the way
    with tenant_context(organization):
        assistant = Assistant.objects.get(is_default=True)
        Conversation.objects.bulk_create(
            Conversation(id=uuid.uuid4(), assistant=assistant, visitor_id=f"v{i}", channel="voice")
            for i in range(args.conversations)
        )
    key = do_create_api_key(organization, name="bench", scopes=["write"]).secret
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get("/api/v1/assistants/")  # warm: caches, connections
    result = {
        "conversations": args.conversations,
        "get_assistants_ms": summary(timed(lambda: client.get("/api/v1/assistants/"), args.requests)),
        "list_conversations_ms": summary(timed(lambda: client.get("/api/v1/conversations/"), args.requests)),
    }
    started = client.post("/api/v1/conversations/text/", {}, content_type="application/json").json()
    url = f"/api/v1/conversations/{started['id']}/messages/"
    replies = timed(lambda: client.post(url, {"text": "hello"}, content_type="application/json"), 20)
    result["text_message_whole_ms"] = summary(replies)
    print(
        f"GET /assistants p50 {result['get_assistants_ms']['p50']} ms; "
        f"GET /conversations p50 {result['list_conversations_ms']['p50']} ms"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
