"""Tenant HTTP tools: signed requests, bounded responses, and the server-side request forgery guard."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.netguard import check_url
from core.signing import verify_signature
from tests.outbound import http_server, redirect_to_internal
from voice.providers.base import ToolCall
from voice.tools.base import ToolBox, ToolContext
from voice.tools.http import HttpTool, HttpToolConfig


class Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Receiver.received.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
        elif self.path.startswith("/fail"):
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"down for maintenance")
        elif self.path.startswith("/huge"):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 200_000)
        elif self.path.startswith("/slow"):
            import time

            time.sleep(1.5)
            self.send_response(200)
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"status": "shipped", "eta": "tomorrow"}).encode())

    do_GET = do_POST = _answer  # noqa: N815 - http.server names its handlers this way

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def loopback_allowed(settings) -> None:
    settings.AURA_TOOL_URLS_ALLOW_LOOPBACK = True


def _tool(url: str, *, method: str = "POST", timeout_ms: int = 2000) -> HttpTool:
    return HttpTool(
        HttpToolConfig(
            name="order_status",
            description="Where an order is",
            parameters={"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
            url=url,
            method=method,
            headers={"X-Api-Key": "tenant-secret"},
            timeout_ms=timeout_ms,
            signing_secret="whsec_test",
        )
    )


def _box(tool: HttpTool) -> ToolBox:
    async def run_db(fn, **kwargs):
        raise AssertionError("no database")

    context = ToolContext(
        conversation_id="c-1", visitor_id="v-1", assistant_id=1, time_zone="UTC", business_hours={}, run_db=run_db
    )
    return ToolBox([tool], context)


async def _call(tool: HttpTool, arguments: dict | str) -> tuple[str, bool]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    run = await _box(tool).run(ToolCall(id="1", name=tool.name, arguments=raw), round_=1)
    return run.result, run.is_error


async def test_a_call_is_signed_and_its_json_answer_reaches_the_model(receiver, loopback_allowed):
    result, is_error = await _call(_tool(f"{receiver}/orders"), {"order_id": "A-17"})

    assert not is_error
    assert json.loads(result) == {"status": "shipped", "eta": "tomorrow"}
    request = Receiver.received[0]
    assert request["method"] == "POST" and request["headers"]["X-Api-Key"] == "tenant-secret"
    assert json.loads(request["body"]) == {
        "arguments": {"order_id": "A-17"},
        "conversation_id": "c-1",
        "visitor_id": "v-1",
    }
    assert verify_signature("whsec_test", request["body"], request["headers"]["AURA-Signature"])
    assert not verify_signature("another-secret", request["body"], request["headers"]["AURA-Signature"])


async def test_a_get_tool_sends_arguments_in_the_signed_query(receiver, loopback_allowed):
    _, is_error = await _call(_tool(f"{receiver}/orders", method="GET"), {"order_id": "A 17"})

    assert not is_error
    request = Receiver.received[0]
    assert request["path"] == "/orders?order_id=A+17"
    assert verify_signature("whsec_test", b"order_id=A+17", request["headers"]["AURA-Signature"])


async def test_arguments_that_break_the_schema_are_reported_to_the_model_without_a_request(receiver, loopback_allowed):
    result, is_error = await _call(_tool(f"{receiver}/orders"), {"order": 17})
    assert is_error and "order_id" in result and "required" in result
    result, is_error = await _call(_tool(f"{receiver}/orders"), "{not json")
    assert is_error and "not valid JSON" in result
    assert Receiver.received == []


async def test_failures_become_errors_for_the_model(receiver, loopback_allowed):
    result, is_error = await _call(_tool(f"{receiver}/fail"), {"order_id": "1"})
    assert is_error and "HTTP 503" in result and "maintenance" in result

    result, is_error = await _call(_tool(f"{receiver}/slow", timeout_ms=300), {"order_id": "1"})
    assert is_error and "did not answer within 300 ms" in result

    result, is_error = await _call(_tool("http://127.0.0.1:9/closed"), {"order_id": "1"})
    assert is_error and "could not be reached" in result


async def test_a_huge_answer_is_cut_to_a_safe_size(receiver, loopback_allowed):
    result, is_error = await _call(_tool(f"{receiver}/huge"), {"order_id": "1"})
    assert not is_error
    assert len(result) < 4100 and result.endswith("[truncated]")


async def test_redirects_are_never_followed(receiver, loopback_allowed):
    result, is_error = await _call(_tool(f"{receiver}/redirect"), {"order_id": "1"})
    assert is_error and "redirects are not followed" in result
    assert len(Receiver.received) == 1  # the metadata address was never asked


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/orders",  # loopback by address
        "http://localhost:{port}/orders",  # loopback by name
        "http://[::1]:{port}/orders",
        "http://169.254.169.254/latest/meta-data/",  # the cloud's metadata service (link-local)
        "http://10.0.0.5/orders",  # private
        "http://192.168.1.1/orders",
        "http://0.0.0.0:{port}/orders",
        "ftp://example.com/orders",
    ],
)
async def test_loopback_private_and_link_local_addresses_are_refused(receiver, url):
    port = receiver.rsplit(":", 1)[1]
    result, is_error = await _call(_tool(url.format(port=port)), {"order_id": "1"})
    assert is_error and "not allowed" in result, result
    assert Receiver.received == []


async def test_a_header_value_beyond_ascii_is_sent_as_utf8(receiver, loopback_allowed):
    tool = _tool(f"{receiver}/orders")
    tool.config.headers["X-Shop"] = "Café Zoë"
    _, is_error = await _call(tool, {"order_id": "1"})
    assert not is_error
    assert Receiver.received[0]["headers"]["X-Shop"].encode("latin-1").decode() == "Café Zoë"


async def test_a_redirect_to_the_platforms_metrics_is_not_followed(loopback_allowed):
    with redirect_to_internal(302, "/metrics") as (redirecting, internal):
        result, is_error = await _call(_tool(f"{redirecting.url}/orders"), {"order_id": "1"})
    assert is_error and "redirects are not followed" in result
    assert len(redirecting.requests) == 1 and internal.requests == []


async def test_a_name_that_resolves_to_loopback_at_call_time_is_refused(settings, monkeypatch):
    settings.AURA_TOOL_URLS_ALLOW_LOOPBACK = False
    real = socket.getaddrinfo
    answers = ["93.184.216.34", "127.0.0.1"]  # public when saved, loopback when called

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "tools.example.test":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers.pop(0) if len(answers) > 1 else answers[0], port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with http_server() as server:
        url = f"http://tools.example.test:{server.url.rsplit(':', 1)[1]}/orders"
        check_url(url, allow_private=False)  # the admin's check when the tool was saved
        result, is_error = await _call(_tool(url), {"order_id": "1"})
    assert is_error and "not allowed" in result and "127.0.0.1" in result
    assert server.requests == []


def test_the_admin_refuses_a_tool_url_on_a_private_network(alpha):
    from django.core.exceptions import ValidationError
    from django_tenants.utils import tenant_context

    from voice.models import HttpTool as HttpToolRow

    with tenant_context(alpha.organization):
        row = HttpToolRow(name="lookup", description="d", url="http://127.0.0.1:8080/x", parameters={"type": "object"})
        with pytest.raises(ValidationError) as error:
            row.full_clean()
        assert "url" in error.value.message_dict
        row.name, row.url = "business_hours", "https://example.com/x"
        with pytest.raises(ValidationError) as error:
            row.full_clean()
        assert "built-in" in str(error.value.message_dict["name"])
        row.name, row.parameters = "lookup", {"type": "array"}
        with pytest.raises(ValidationError) as error:
            row.full_clean()
        assert "parameters" in error.value.message_dict
