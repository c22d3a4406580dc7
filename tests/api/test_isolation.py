"""A key of organization A never reads or writes B's objects: every endpoint, every id of B → 404."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from conversations.models import Handoff, Lead, VisitorProfile
from knowledge.actions import do_add_document
from knowledge.models import Document
from tenants.models import ApiKey, WidgetKey
from tests.api import data
from tests.api.conftest import error_code
from voice.models import Assistant, HttpTool


@pytest.fixture
def beta_objects(beta, make_key) -> dict[str, str]:
    from tests.conftest import _seeded

    with tenant_context(_seeded("alpha").organization):
        alpha_ids = set(Assistant.objects.values_list("pk", flat=True))
    with tenant_context(beta.organization):  # an id alpha's schema does not have (the sequences are separate)
        assistant_id = Assistant.objects.create(name="Beta sales").pk
        while assistant_id in alpha_ids:
            assistant_id = Assistant.objects.create(name="Beta sales").pk
    make_key(beta)
    endpoint = data.webhook_endpoint(beta.organization)
    conversation_id = data.conversation_with_turns(beta.organization)
    with tenant_context(beta.organization):
        tool = HttpTool.objects.create(name="beta_tool", description="d", url="https://93.184.216.34/x")
        lead = Lead.objects.create(conversation_id=conversation_id, name="Bea", email="bea@example.com")
        handoff = Handoff.objects.create(conversation_id=conversation_id, reason="human", transcript="…")
        visitor = VisitorProfile.objects.create(visitor_id="beta-visitor", name="Bea")
        document = do_add_document(text="# Beta\n\nBeta's secret opening hours.")
    return {
        "assistants": str(assistant_id),
        "widget-keys": str(WidgetKey.objects.filter(organization=beta.organization).first().pk),
        "api-keys": str(ApiKey.objects.filter(organization=beta.organization).first().pk),
        "conversations": conversation_id,
        "invoices": str(data.invoice(beta.organization).pk),
        "webhooks": str(endpoint.pk),
        "webhook-deliveries": str(data.delivery(endpoint).pk),
        "tools": str(tool.pk),
        "leads": str(lead.pk),
        "handoffs": str(handoff.pk),
        "visitors": str(visitor.pk),
        "documents": str(document.pk),
    }


# (method, path template, body): every route that takes an id.
ROUTES = [
    ("get", "/api/v1/{resource}/{id}/", None),
    ("patch", "/api/v1/{resource}/{id}/", {"name": "taken"}),
    ("put", "/api/v1/{resource}/{id}/", {"name": "taken"}),
    ("delete", "/api/v1/{resource}/{id}/", None),
]
ACTIONS = [
    ("post", "/api/v1/api-keys/{id}/revoke/"),
    ("post", "/api/v1/api-keys/{id}/rotate/"),
    ("get", "/api/v1/webhooks/{id}/secret/"),
    ("post", "/api/v1/webhooks/{id}/roll-secret/"),
    ("post", "/api/v1/webhooks/{id}/ping/"),
    ("post", "/api/v1/webhook-deliveries/{id}/replay/"),
    ("get", "/api/v1/tools/{id}/secret/"),
    ("post", "/api/v1/handoffs/{id}/resolve/"),
    ("post", "/api/v1/documents/{id}/reindex/"),
]


def _beta_org() -> object:
    from tenants.models import Organization

    return Organization.objects.get(slug="beta")


@pytest.mark.django_db
def test_every_id_of_another_organization_is_not_found(alpha, beta_objects, alpha_api):
    tried = 0
    for resource, object_id in beta_objects.items():
        for method, template, body in ROUTES:
            response = getattr(alpha_api, method)(template.format(resource=resource, id=object_id), body, format="json")
            assert response.status_code in (404, 405), (method, resource, response.status_code)
            if response.status_code == 404:
                assert error_code(response) == "not_found"
                tried += 1
    for method, template in ACTIONS:
        resource = template.split("/")[3]
        response = getattr(alpha_api, method)(template.format(id=beta_objects[resource]), {}, format="json")
        assert response.status_code == 404, (template, response.status_code)
        tried += 1
    assert tried >= 20  # every id route of every resource that has it

    # nothing of beta changed
    with tenant_context(_beta_org()):
        assert Assistant.objects.filter(pk=beta_objects["assistants"], name="Beta sales").exists()
        assert HttpTool.objects.filter(pk=beta_objects["tools"], name="beta_tool").exists()
        assert Lead.objects.filter(pk=beta_objects["leads"]).exists()
        assert Handoff.objects.filter(pk=beta_objects["handoffs"], state="open").exists()
        assert VisitorProfile.objects.filter(pk=beta_objects["visitors"]).exists()
        assert Document.objects.filter(pk=beta_objects["documents"], title="Beta").exists()
    assert ApiKey.objects.filter(pk=beta_objects["api-keys"], revoked_at__isnull=True).exists()
    assert WidgetKey.objects.filter(pk=beta_objects["widget-keys"]).exists()


@pytest.mark.django_db
def test_lists_show_only_the_keys_organization(alpha, beta, beta_objects, alpha_api):
    data.conversation_with_turns(alpha.organization)
    for resource in beta_objects:
        response = alpha_api.get(f"/api/v1/{resource}/")
        assert response.status_code == 200, resource
        ids = {str(row["id"]) for row in response.json()["results"]}
        assert beta_objects[resource] not in ids, resource


@pytest.mark.django_db
def test_a_widget_key_cannot_point_at_another_organizations_assistant(alpha, beta, alpha_api):
    with tenant_context(alpha.organization):
        alpha_ids = set(Assistant.objects.values_list("pk", flat=True))
    with tenant_context(beta.organization):
        beta_assistant = Assistant.objects.create(name="Beta only").pk
        while beta_assistant in alpha_ids:
            beta_assistant = Assistant.objects.create(name="Beta only").pk

    response = alpha_api.post("/api/v1/widget-keys/", {"name": "x", "assistant_id": beta_assistant}, format="json")

    assert response.status_code == 400
    assert "assistant_id" in response.json()["error"]["details"]
