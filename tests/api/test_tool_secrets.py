"""A tool's stored headers (often credentials) stay with the destination they were written for: moving
the tool's URL to another scheme, host or port drops them unless the same request sets them again.
Header names and values with CR, LF or NUL are refused. Through the API and the tenant admin."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from tests.api.conftest import error_code
from tests.conftest import PASSWORD
from voice.models import HttpTool

pytestmark = pytest.mark.django_db

TOOL = {
    "name": "check_order_status",
    "description": "Look an order up by its number.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    "url": "https://93.184.216.34/orders",  # public addresses: no DNS needed
    "method": "POST",
    "headers": {"X-Api-Key": "tenant-secret", "X-Team": "shop"},
}


def _stored_headers(alpha, tool_id: int) -> dict[str, str]:
    with tenant_context(alpha.organization):
        return HttpTool.objects.get(pk=tool_id).headers


@pytest.fixture
def tool(alpha, alpha_api) -> dict:
    created = alpha_api.post("/api/v1/tools/", TOOL, format="json")
    assert created.status_code == 201, created.json()
    return created.json()


@pytest.mark.parametrize(
    "moved",
    [
        "https://93.184.216.35/orders",  # another host
        "http://93.184.216.34/orders",  # another scheme
        "https://93.184.216.34:8443/orders",  # another port
    ],
)
def test_moving_the_url_elsewhere_drops_the_stored_headers(alpha, alpha_api, tool, moved):
    patched = alpha_api.patch(f"/api/v1/tools/{tool['id']}/", {"url": moved}, format="json")

    assert patched.status_code == 200, patched.json()
    assert patched.json()["header_names"] == []
    assert _stored_headers(alpha, tool["id"]) == {}


def test_the_same_destination_keeps_them_and_a_move_that_sets_them_again_keeps_the_new_ones(alpha, alpha_api, tool):
    same_place = {"url": "https://93.184.216.34:443/v2/orders"}  # only the path changed
    same = alpha_api.patch(f"/api/v1/tools/{tool['id']}/", same_place, format="json")
    assert same.json()["header_names"] == ["X-Api-Key", "X-Team"]

    moved = alpha_api.patch(
        f"/api/v1/tools/{tool['id']}/",
        {"url": "https://93.184.216.35/orders", "headers": {"X-Api-Key": "key-for-the-new-host"}},
        format="json",
    )
    assert moved.status_code == 200 and moved.json()["header_names"] == ["X-Api-Key"]
    assert _stored_headers(alpha, tool["id"]) == {"X-Api-Key": "key-for-the-new-host"}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Api-Key": "k\r\nX-Injected: 1"},
        {"X-Api-Key": "k\nX-Injected: 1"},
        {"X-Api-Key": "k\rX"},
        {"X-Api-Key": "k\x00"},
        {"X-Api\r\nKey": "k"},
    ],
)
def test_header_names_and_values_with_line_breaks_or_nul_are_refused(alpha, alpha_api, tool, headers):
    response = alpha_api.patch(f"/api/v1/tools/{tool['id']}/", {"headers": headers}, format="json")

    assert response.status_code == 400, response.json()
    # the API's JSON parser refuses NUL anywhere already
    if any("\x00" in name + value for name, value in headers.items()):
        assert error_code(response) in ("parse_error", "validation_error")
    else:
        assert error_code(response) == "validation_error"
        assert "headers" in response.json()["error"]["details"]
    assert _stored_headers(alpha, tool["id"]) == TOOL["headers"]


def test_the_api_schema_says_a_move_drops_the_headers(alpha_api):
    schema = alpha_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "scheme, host or port" in schema.content.decode()


# --- the tenant admin --------------------------------------------------------------------------------------


@pytest.fixture
def alpha_admin(alpha) -> Client:
    client = Client(HTTP_HOST=alpha.host)
    assert client.post("/admin/login/", {"username": alpha.admin_email, "password": PASSWORD}).status_code == 302
    return client


def _form(tool_row: HttpTool, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": tool_row.name,
        "description": tool_row.description,
        "parameters": json.dumps(tool_row.parameters),
        "url": tool_row.url,
        "method": tool_row.method,
        "headers": json.dumps(tool_row.headers),
        "timeout_ms": tool_row.timeout_ms,
        "is_active": "on",
    }
    return {**data, **changes}


def _row(alpha, tool_id: int) -> HttpTool:
    with tenant_context(alpha.organization):
        return HttpTool.objects.get(pk=tool_id)


def test_the_admin_drops_the_headers_when_the_url_moves_and_says_so(alpha, alpha_admin, tool):
    page = f"/admin/voice/httptool/{tool['id']}/change/"
    form = alpha_admin.get(page).content.decode()
    assert "scheme, host or port" in form  # said before saving, too

    saved = alpha_admin.post(page, _form(_row(alpha, tool["id"]), url="https://93.184.216.35/orders"), follow=True)

    assert saved.status_code == 200
    assert "headers were removed" in saved.content.decode()
    assert _stored_headers(alpha, tool["id"]) == {}


def test_the_admin_keeps_them_when_asked_to_send_them_to_the_new_address(alpha, alpha_admin, tool):
    page = f"/admin/voice/httptool/{tool['id']}/change/"
    row = _row(alpha, tool["id"])
    alpha_admin.post(page, _form(row, url="https://93.184.216.35/orders", keep_headers="on"))
    assert _stored_headers(alpha, tool["id"]) == TOOL["headers"]


def test_the_admin_refuses_a_header_value_with_a_line_break(alpha, alpha_admin, tool):
    page = f"/admin/voice/httptool/{tool['id']}/change/"
    answer = alpha_admin.post(page, _form(_row(alpha, tool["id"]), headers=json.dumps({"X-Api-Key": "k\r\nX-A: 1"})))
    assert answer.status_code == 200 and "line break" in answer.content.decode()
    assert _stored_headers(alpha, tool["id"]) == TOOL["headers"]
