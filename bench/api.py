"""REST API request cost: key check, tenant switch, a list of conversations and a text reply.

    .venv/bin/python -m bench.api --conversations 2000 --json

In-process (Django's test client, no network): the server's own time per request, with the
embedded PostgreSQL and Redis. Prints figures, and with --json one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

from bench.common import fresh_platform, summary


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
    organization = fresh_platform(
        "api", AURA_API_RATE_PER_KEY_PER_MINUTE="1000000", AURA_API_RATE_PER_ORGANIZATION_PER_MINUTE="1000000"
    )
    from django.test import Client
    from django_tenants.utils import tenant_context

    from billing.models import Subscription
    from conversations.models import Conversation
    from tenants.actions import do_create_api_key
    from voice.models import Assistant

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
        "get_assistants_ms": summary(timed(lambda: client.get("/api/v1/assistants/"), args.requests), 2),
        "list_conversations_ms": summary(timed(lambda: client.get("/api/v1/conversations/"), args.requests), 2),
    }
    started = client.post("/api/v1/conversations/text/", {}, content_type="application/json").json()
    url = f"/api/v1/conversations/{started['id']}/messages/"
    replies = timed(lambda: client.post(url, {"text": "hello"}, content_type="application/json"), 20)
    result["text_message_whole_ms"] = summary(replies, 2)
    print(
        f"GET /assistants p50 {result['get_assistants_ms']['p50']} ms; "
        f"GET /conversations p50 {result['list_conversations_ms']['p50']} ms"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
