"""Happy paths and bad inputs of each resource."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from conversations.models import Conversation, Turn
from tenants.models import ApiKey
from tests.api import data
from tests.api.conftest import api_client, error_code
from tests.conftest import PASSWORD
from voice.models import Assistant


@pytest.mark.django_db
def test_assistant_crud_validates_like_the_admin(alpha, alpha_api, settings):
    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = False
    created = alpha_api.post(
        "/api/v1/assistants/",
        {"name": "Sales", "router_policy": "fallback", "llm_fallbacks": ["xai:grok-3-mini"], "barge_in_min_ms": 300},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assistant_id = created.json()["id"]

    listening = {"speech_detector": "silero", "speech_threshold": 0.7}
    patched = alpha_api.patch(f"/api/v1/assistants/{assistant_id}/", listening, format="json")
    assert patched.status_code == 200, patched.json()
    assert {name: patched.json()[name] for name in listening} == listening

    patched = alpha_api.patch(f"/api/v1/assistants/{assistant_id}/", {"is_default": True}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["is_default"] is True
    with tenant_context(alpha.organization):
        assert Assistant.objects.filter(is_default=True).count() == 1

    for bad in (
        {"llm_fallbacks": ["not-a-ref"]},
        {"openai_compatible_base_url": "http://127.0.0.1:8000/v1"},
        {"vad_aggressiveness": 9},
        {"speech_detector": "whisper"},
        {"speech_threshold": 0.05},
        {"speech_threshold": 1.2},
        {"name": "x" * 101},
    ):
        response = alpha_api.patch(f"/api/v1/assistants/{assistant_id}/", bad, format="json")
        assert response.status_code == 400, bad
        assert error_code(response) == "validation_error"
        assert set(bad) <= set(response.json()["error"]["details"]), response.json()

    assert alpha_api.delete(f"/api/v1/assistants/{assistant_id}/").status_code == 204


@pytest.mark.django_db
def test_an_assistant_in_use_cannot_be_deleted(alpha, alpha_api):
    with tenant_context(alpha.organization):
        default_id = Assistant.objects.get(is_default=True).pk

    response = alpha_api.delete(f"/api/v1/assistants/{default_id}/")  # the seeded widget key uses it

    assert response.status_code == 409
    assert error_code(response) == "assistant_in_use"


@pytest.mark.django_db
def test_widget_keys_crud(alpha, alpha_api):
    with tenant_context(alpha.organization):
        assistant_id = Assistant.objects.get(is_default=True).pk
    created = alpha_api.post("/api/v1/widget-keys/", {"name": "Shop", "assistant_id": assistant_id}, format="json")
    assert created.status_code == 201, created.json()
    key = created.json()
    assert key["key"].startswith("pk_")
    assert key["allowed_origins"] == ["http://alpha.localhost:8000"]
    assert key["key"] in key["embed_snippet"]

    updated = alpha_api.patch(
        f"/api/v1/widget-keys/{key['id']}/",
        {"allowed_origins": ["https://Shop.example/", "https://*.shop.example"]},
        format="json",
    )
    assert updated.json()["allowed_origins"] == ["https://*.shop.example", "https://shop.example"]
    bad = alpha_api.patch(
        f"/api/v1/widget-keys/{key['id']}/", {"allowed_origins": ["shop.example/path"]}, format="json"
    )
    assert bad.status_code == 400
    bad = alpha_api.patch(f"/api/v1/widget-keys/{key['id']}/", {"accent_color": "red"}, format="json")
    assert bad.status_code == 400
    assert alpha_api.delete(f"/api/v1/widget-keys/{key['id']}/").status_code == 204


@pytest.mark.django_db
def test_conversations_filters_pages_detail_export_and_delete(alpha, alpha_api):
    plain = data.conversation_with_turns(alpha.organization, visitor_id="v-a")
    cut = data.conversation_with_turns(alpha.organization, visitor_id="v-b", interrupted=True)

    listed = alpha_api.get("/api/v1/conversations/", {"limit": 1})
    assert len(listed.json()["results"]) == 1
    second = alpha_api.get(listed.json()["next"])
    assert {listed.json()["results"][0]["id"], second.json()["results"][0]["id"]} == {plain, cut}

    assert [c["id"] for c in alpha_api.get("/api/v1/conversations/", {"visitor_id": "v-a"}).json()["results"]] == [
        plain
    ]
    assert [c["id"] for c in alpha_api.get("/api/v1/conversations/", {"interrupted": "true"}).json()["results"]] == [
        cut
    ]
    assert alpha_api.get("/api/v1/conversations/", {"started_after": "2999-01-01T00:00:00Z"}).json()["results"] == []
    assert alpha_api.get("/api/v1/conversations/", {"status": "nope"}).status_code == 400
    assert alpha_api.get("/api/v1/conversations/", {"cursor": "garbage"}).status_code == 400
    assert alpha_api.get("/api/v1/conversations/", {"limit": "0"}).status_code == 400

    detail = alpha_api.get(f"/api/v1/conversations/{cut}/").json()
    assert [t["role"] for t in detail["turns"]] == ["visitor", "assistant"]
    assert detail["turns"][1]["heard_text"] == "Hello,"

    exported = alpha_api.get("/api/v1/conversations/export/", {"format": "json"})
    assert {c["id"] for c in json.loads(b"".join(exported.streaming_content))} == {plain, cut}
    rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(alpha_api.get("/api/v1/conversations/export/", {"format": "csv"}).streaming_content).decode()
            )
        )
    )
    assert len(rows) == 4
    assert rows[0]["turn_role"] in ("visitor", "assistant")

    assert alpha_api.delete(f"/api/v1/conversations/{plain}/").status_code == 204
    with tenant_context(alpha.organization):
        assert not Conversation.objects.filter(pk=plain).exists()
        Conversation.objects.filter(pk=cut).update(status="active")
    response = alpha_api.delete(f"/api/v1/conversations/{cut}/")
    assert response.status_code == 409
    assert error_code(response) == "conversation_active"


@pytest.mark.django_db
def test_usage_by_day_and_invoices(alpha, alpha_api):
    from datetime import UTC, datetime

    from tests.billing.conftest import add_event

    add_event(alpha.organization, "llm_input_tokens", 120, datetime.now(UTC), channel="text")
    add_event(alpha.organization, "llm_input_tokens", 30, datetime.now(UTC), channel="voice")
    report = alpha_api.get("/api/v1/usage/").json()
    assert report["totals"] == [{"metric": "llm_input_tokens", "unit": "tokens", "quantity": "150.000"}]
    assert alpha_api.get("/api/v1/usage/", {"start": "2026-02-01", "end": "2026-01-01"}).status_code == 400
    assert alpha_api.get("/api/v1/usage/", {"start": "2020-01-01", "end": "2026-01-01"}).status_code == 400
    assert alpha_api.get("/api/v1/usage/", {"metric": "bogus"}).status_code == 400

    invoice = data.invoice(alpha.organization)
    listed = alpha_api.get("/api/v1/invoices/").json()["results"]
    assert [row["number"] for row in listed] == [invoice.number]
    assert "provider_cost" not in listed[0]


@pytest.mark.django_db
def test_api_keys_through_the_api(alpha, alpha_api):
    created = alpha_api.post("/api/v1/api-keys/", {"name": "CI", "scopes": ["read"]}, format="json")
    assert created.status_code == 201
    secret = created.json()["key"]
    assert api_client(secret).get("/api/v1/assistants/").status_code == 200
    listed = alpha_api.get("/api/v1/api-keys/").json()["results"]
    assert all("key" not in row for row in listed)

    rotated = alpha_api.post(f"/api/v1/api-keys/{created.json()['id']}/rotate/", {}, format="json")
    assert rotated.status_code == 201
    assert api_client(secret).get("/api/v1/assistants/").status_code == 401
    new_id = rotated.json()["id"]
    assert alpha_api.post(f"/api/v1/api-keys/{new_id}/revoke/").json()["is_active"] is False
    assert api_client(rotated.json()["key"]).get("/api/v1/assistants/").status_code == 401

    for bad in ({"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]}, {"name": "", "scopes": ["read"]}):
        assert alpha_api.post("/api/v1/api-keys/", bad, format="json").status_code == 400, bad
    past = alpha_api.post(
        "/api/v1/api-keys/", {"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}, format="json"
    )
    assert past.status_code == 400


@pytest.mark.django_db
def test_webhooks_through_the_api(alpha, alpha_api, settings, monkeypatch):
    from webhooks import tasks

    monkeypatch.setattr(tasks, "enqueue_delivery", lambda *a, **k: None)
    settings.AURA_WEBHOOK_URLS_ALLOW_LOOPBACK = False
    refused = alpha_api.post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1/x", "events": ["lead.captured"]}, format="json"
    )
    assert refused.status_code == 400
    assert "url" in refused.json()["error"]["details"]
    assert (
        alpha_api.post("/api/v1/webhooks/", {"url": "https://x.example", "events": []}, format="json").status_code
        == 400
    )

    settings.AURA_WEBHOOK_URLS_ALLOW_LOOPBACK = True
    created = alpha_api.post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["lead.captured"]}, format="json"
    )
    assert created.status_code == 201, created.json()
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert "secret" not in alpha_api.get(f"/api/v1/webhooks/{endpoint['id']}/").json()
    assert alpha_api.get(f"/api/v1/webhooks/{endpoint['id']}/secret/").json()["secret"] == endpoint["secret"]
    rolled = alpha_api.post(f"/api/v1/webhooks/{endpoint['id']}/roll-secret/").json()["secret"]
    assert rolled != endpoint["secret"]

    ping = alpha_api.post(f"/api/v1/webhooks/{endpoint['id']}/ping/")
    assert ping.status_code == 202
    deliveries = alpha_api.get("/api/v1/webhook-deliveries/", {"endpoint_id": endpoint["id"]}).json()["results"]
    assert [d["event_type"] for d in deliveries] == ["ping"]
    detail = alpha_api.get(f"/api/v1/webhook-deliveries/{deliveries[0]['id']}/").json()
    assert detail["payload"]["type"] == "ping"
    replay = alpha_api.post(f"/api/v1/webhook-deliveries/{deliveries[0]['id']}/replay/")
    assert replay.status_code == 202
    assert replay.json()["event_id"] == deliveries[0]["event_id"]
    assert alpha_api.delete(f"/api/v1/webhooks/{endpoint['id']}/").status_code == 204


@pytest.mark.django_db
def test_the_tenant_admin_issues_a_key_and_sees_its_secret_once(alpha):
    client = Client(HTTP_HOST=alpha.host)
    client.post("/admin/login/", {"username": alpha.admin_email, "password": PASSWORD})

    page = client.post(
        "/admin/tenants/apikey/add/", {"name": "Zapier", "scopes": ["read", "write"]}, follow=True
    ).content.decode()

    key = ApiKey.objects.get(organization=alpha.organization, name="Zapier")
    assert f"sk_{key.prefix}_" in page
    listing = client.get("/admin/tenants/apikey/").content.decode()
    assert "Zapier" in listing
    assert f"sk_{key.prefix}_…" in listing
    secret_start = page.index(f"sk_{key.prefix}_")
    secret = page[secret_start : page.index(" ", secret_start)]
    assert secret not in listing
    assert api_client(secret).get("/api/v1/assistants/").status_code == 200


@pytest.mark.django_db
def test_conversations_filter_by_emotion_and_intent_and_summarise_emotions(alpha, alpha_api):
    calm = data.conversation_with_turns(alpha.organization, visitor_id="v-calm")
    upset = data.conversation_with_turns(alpha.organization, visitor_id="v-upset")
    with tenant_context(alpha.organization):
        Turn.objects.filter(conversation_id=calm, role="visitor").update(emotion="neutral", intent="business_hours")
        Turn.objects.filter(conversation_id=upset, role="visitor").update(
            emotion="frustrated", intent="order_status", understood_by="model"
        )

    def ids(**query: str) -> list[str]:
        response = alpha_api.get("/api/v1/conversations/", query)
        assert response.status_code == 200, response.json()
        return [c["id"] for c in response.json()["results"]]

    assert ids(emotion="frustrated") == [upset]
    assert ids(intent="business_hours") == [calm]
    assert ids(emotion="angry") == []
    assert alpha_api.get("/api/v1/conversations/", {"emotion": "furious"}).status_code == 400
    assert alpha_api.get("/api/v1/conversations/", {"intent": "DROP TABLE"}).status_code == 400

    listed = {c["id"]: c for c in alpha_api.get("/api/v1/conversations/").json()["results"]}
    assert (listed[upset]["last_emotion"], listed[upset]["upset_turns"]) == ("frustrated", 1)
    assert (listed[calm]["last_emotion"], listed[calm]["upset_turns"]) == ("neutral", 0)
    detail = alpha_api.get(f"/api/v1/conversations/{upset}/").json()
    assert detail["emotions"] == {"counts": {"frustrated": 1}, "dominant": "frustrated", "last": "frustrated"}
    assert detail["turns"][0]["intent"] == "order_status" and detail["turns"][0]["understood_by"] == "model"


@pytest.mark.django_db
def test_assistant_turn_end_and_emotion_settings_are_validated(alpha, alpha_api):
    intents = [{"name": "book_table", "examples": ["book a table", "a reservation for tonight"]}]
    created = alpha_api.post(
        "/api/v1/assistants/",
        {
            "name": "Listener",
            "semantic_turn_end": True,
            "turn_min_silence_ms": 250,
            "turn_max_silence_ms": 2500,
            "intents": intents,
            "escalate_upset_visitors": True,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["intents"] == intents
    assistant_id = created.json()["id"]
    for bad, field in (
        ({"turn_min_silence_ms": 50}, "turn_min_silence_ms"),
        ({"turn_max_silence_ms": 60000}, "turn_max_silence_ms"),
        ({"turn_min_silence_ms": 900}, "turn_min_silence_ms"),  # above the end silence (600)
        ({"turn_min_silence_ms": 600}, "turn_min_silence_ms"),  # equal to the end silence: semantic would be off
        ({"intents": [{"name": "handoff", "examples": ["a person"]}]}, "intents"),
        ({"intents": [{"name": "book_table", "examples": []}]}, "intents"),
        ({"intents": [{"name": "x", "examples": ["too short a name"]}]}, "intents"),
    ):
        response = alpha_api.patch(f"/api/v1/assistants/{assistant_id}/", bad, format="json")
        assert response.status_code == 400, (bad, response.json())
        assert field in response.json()["error"]["details"], response.json()
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get(pk=assistant_id)
        assert (assistant.turn_min_silence_ms, assistant.turn_max_silence_ms) == (250, 2500)  # nothing lost
