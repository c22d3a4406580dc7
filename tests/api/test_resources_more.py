"""Tools, leads, hand-offs and visitor profiles over the API: happy paths, bad inputs, scopes."""

from __future__ import annotations

import json
import uuid

import pytest
from django_tenants.utils import tenant_context

from conversations.models import Handoff, Lead, VisitorProfile
from tests.api import data
from tests.api.conftest import api_client, error_code
from voice.models import Assistant, HttpTool


@pytest.mark.django_db
def test_http_tools_crud_validates_like_the_admin(alpha, alpha_api, make_key, settings):
    settings.AURA_TOOL_URLS_ALLOW_PRIVATE = False
    settings.AURA_TOOL_URLS_ALLOW_LOOPBACK = False
    with tenant_context(alpha.organization):
        assistant_id = Assistant.objects.get(is_default=True).pk
    body = {
        "name": "check_order_status",
        "description": "Look an order up by its number.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
        "url": "https://93.184.216.34/orders",  # a public address: no DNS needed
        "method": "POST",
        "headers": {"X-Api-Key": "k"},
        "assistant_ids": [assistant_id],
    }
    created = alpha_api.post("/api/v1/tools/", body, format="json")
    assert created.status_code == 201, created.json()
    tool = created.json()
    assert tool["assistant_ids"] == [assistant_id]
    assert "signing_secret" not in tool and tool["signing_secret_hint"].startswith("whsec_…")
    # Header values are often credentials: written, never read back, not even by the key that wrote them.
    assert "headers" not in tool and tool["header_names"] == ["X-Api-Key"]
    listed = api_client(make_key(alpha, ["read"])).get("/api/v1/tools/").json()
    assert "k" not in json.dumps(listed["results"][0].get("headers", {})) and "headers" not in listed["results"][0]

    secret = alpha_api.get(f"/api/v1/tools/{tool['id']}/secret/")
    assert secret.status_code == 200 and secret.json()["secret"].startswith("whsec_")
    write_only = api_client(make_key(alpha, ["write"]))
    assert error_code(write_only.get(f"/api/v1/tools/{tool['id']}/secret/")) == "insufficient_scope"

    for bad in (
        {"url": "http://127.0.0.1/hook"},
        {"url": "http://169.254.169.254/latest"},
        {"name": "business_hours"},
        {"name": "Bad Name"},
        {"parameters": {"type": "array"}},
        {"timeout_ms": 10},
        {"headers": {"Host": "x"}},
        {"assistant_ids": [987654321]},
    ):
        response = alpha_api.patch(f"/api/v1/tools/{tool['id']}/", bad, format="json")
        assert response.status_code == 400, (bad, response.json())
        assert error_code(response) == "validation_error"
        field = "assistant_ids" if "assistant_ids" in bad else next(iter(bad))
        assert field in response.json()["error"]["details"], response.json()

    patched = alpha_api.patch(f"/api/v1/tools/{tool['id']}/", {"is_active": False, "assistant_ids": []}, format="json")
    assert patched.status_code == 200 and patched.json()["assistant_ids"] == []
    assert alpha_api.get("/api/v1/tools/").json()["results"][0]["name"] == "check_order_status"
    assert alpha_api.delete(f"/api/v1/tools/{tool['id']}/").status_code == 204
    with tenant_context(alpha.organization):
        assert not HttpTool.objects.exists()


@pytest.mark.django_db
def test_assistants_expose_built_in_tools_and_memory_settings(alpha, alpha_api):
    with tenant_context(alpha.organization):
        assistant_id = Assistant.objects.get(is_default=True).pk
    url = f"/api/v1/assistants/{assistant_id}/"
    changed = alpha_api.patch(
        url,
        {"tools": ["business_hours", "capture_lead"], "remember_visitors": False, "recent_turns": 20},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["tools"] == ["business_hours", "capture_lead"]
    with tenant_context(alpha.organization):
        assistant = Assistant.objects.get(pk=assistant_id)
        assert (assistant.tools, assistant.remember_visitors, assistant.recent_turns) == (
            ["business_hours", "capture_lead"],
            False,
            20,
        )
    for bad in ({"tools": ["teleport"]}, {"tools": "business_hours"}, {"recent_turns": 2}):
        response = alpha_api.patch(url, bad, format="json")
        assert response.status_code == 400, bad
        assert set(bad) <= set(response.json()["error"]["details"])


def _lead_and_handoff(organization) -> tuple[int, int, str]:
    conversation_id = data.conversation_with_turns(organization)
    with tenant_context(organization):
        lead = Lead.objects.create(
            conversation_id=conversation_id, visitor_id="v-1", name="Ana", email="ana@example.com"
        )
        handoff = Handoff.objects.create(conversation_id=conversation_id, reason="Wants a human", transcript="…")
    return lead.pk, handoff.pk, conversation_id


@pytest.mark.django_db
def test_leads_list_filter_detail_and_delete(alpha, alpha_api, make_key):
    lead_id, _, conversation_id = _lead_and_handoff(alpha.organization)

    rows = alpha_api.get("/api/v1/leads/").json()["results"]
    assert [(row["id"], row["conversation_id"], row["email"]) for row in rows] == [
        (lead_id, conversation_id, "ana@example.com")
    ]
    assert alpha_api.get("/api/v1/leads/?created_after=2999-01-01T00:00:00Z").json()["results"] == []
    assert len(alpha_api.get("/api/v1/leads/?created_before=2999-01-01T00:00:00Z").json()["results"]) == 1
    bad = alpha_api.get("/api/v1/leads/?created_after=yesterday")
    assert bad.status_code == 400 and "created_after" in bad.json()["error"]["details"]
    assert alpha_api.get(f"/api/v1/leads/{lead_id}/").json()["name"] == "Ana"

    reader = api_client(make_key(alpha, ["read"]))
    assert reader.get("/api/v1/leads/").status_code == 200
    assert error_code(reader.delete(f"/api/v1/leads/{lead_id}/")) == "insufficient_scope"
    assert alpha_api.delete(f"/api/v1/leads/{lead_id}/").status_code == 204
    assert alpha_api.get(f"/api/v1/leads/{lead_id}/").status_code == 404


@pytest.mark.django_db
def test_handoffs_filter_by_state_and_resolve(alpha, alpha_api, make_key):
    _, handoff_id, _ = _lead_and_handoff(alpha.organization)

    assert [row["id"] for row in alpha_api.get("/api/v1/handoffs/?state=open").json()["results"]] == [handoff_id]
    assert alpha_api.get("/api/v1/handoffs/?state=done").json()["results"] == []
    assert alpha_api.get("/api/v1/handoffs/?state=closed").status_code == 400

    reader = api_client(make_key(alpha, ["read"]))
    assert reader.get(f"/api/v1/handoffs/{handoff_id}/").json()["state"] == "open"
    assert error_code(reader.post(f"/api/v1/handoffs/{handoff_id}/resolve/")) == "insufficient_scope"

    resolved = alpha_api.post(f"/api/v1/handoffs/{handoff_id}/resolve/")
    assert resolved.status_code == 200 and resolved.json()["state"] == "done"
    assert alpha_api.post(f"/api/v1/handoffs/{handoff_id}/resolve/").json()["state"] == "done"  # idempotent
    assert [row["id"] for row in alpha_api.get("/api/v1/handoffs/?state=done").json()["results"]] == [handoff_id]
    assert alpha_api.delete(f"/api/v1/handoffs/{handoff_id}/").status_code == 405


@pytest.mark.django_db
def test_visitor_profiles_need_write_scope_and_delete_forgets(alpha, alpha_api, make_key):
    visitor_id = f"v-{uuid.uuid4().hex[:8]}"
    with tenant_context(alpha.organization):
        profile = VisitorProfile.objects.create(visitor_id=visitor_id, name="Ana", preferences=["vegan"])

    reader = api_client(make_key(alpha, ["read"]))
    assert error_code(reader.get("/api/v1/visitors/")) == "insufficient_scope"
    rows = alpha_api.get("/api/v1/visitors/").json()["results"]
    assert [(row["visitor_id"], row["preferences"]) for row in rows] == [(visitor_id, ["vegan"])]

    assert alpha_api.delete(f"/api/v1/visitors/{profile.pk}/").status_code == 204
    with tenant_context(alpha.organization):
        assert not VisitorProfile.objects.filter(visitor_id=visitor_id).exists()
