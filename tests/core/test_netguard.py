"""The server-side request forgery guard for URLs tenants configure."""

from __future__ import annotations

import socket

import pytest

from core.netguard import (
    Policy,
    RedirectRefusedError,
    UnsafeURLError,
    async_client,
    check_address,
    check_url,
    sync_client,
)
from tests.outbound import http_server, redirect_to_internal


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000/v1", "127.0.0.1"),
        ("http://localhost/v1", "does not call"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),  # the cloud's metadata service
        ("http://[::1]/v1", "::1"),
        ("http://0.0.0.0/v1", "0.0.0.0"),
        ("ftp://10.0.0.5/v1", "http:// or https://"),
        ("http://no-such-host.invalid/v1", "does not resolve"),
    ],
)
def test_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeURLError, match=why.replace(".", r"\.").replace("[", r"\[")):
        check_url(url)


def test_private_networks_are_allowed_unless_switched_off() -> None:
    check_url("http://10.0.3.7:8000/v1")  # a self-hosted vLLM
    with pytest.raises(UnsafeURLError, match="private address"):
        check_url("http://10.0.3.7:8000/v1", allow_private=False)


def test_loopback_only_when_allowed() -> None:
    check_url("http://127.0.0.1:11434/v1", allow_loopback=True)  # Ollama on a developer's machine


def test_the_assistant_form_refuses_a_metadata_address(settings) -> None:
    from django.core.exceptions import ValidationError

    from voice.models import Assistant

    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = False
    assistant = Assistant(name="x", openai_compatible_base_url="http://169.254.169.254/v1")
    with pytest.raises(ValidationError) as refused:
        assistant.clean()
    assert "openai_compatible_base_url" in refused.value.message_dict


@pytest.mark.parametrize("address", ["100.100.100.200", "fd00:ec2::254", "100.64.0.1"])
def test_shared_address_space_and_metadata_services_are_refused(address):
    with pytest.raises(UnsafeURLError):
        check_address(address, "host", allow_private=False)
    if address != "100.64.0.1":  # a metadata service is refused even where private networks are allowed
        with pytest.raises(UnsafeURLError):
            check_address(address, "host", allow_private=True)


# --- IPv6 spellings of IPv4 addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254, the metadata service
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "2001:0:a00:1:8000:63bf:3fff:fdd2",  # Teredo, server 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 well-known prefix, 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata service
        "64:ff9b:1::a00:1",  # NAT64 local-use prefix
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
    ],
)
def test_every_ipv6_form_of_a_private_or_loopback_ipv4_address_is_refused(address):
    # even where private networks and loopback are allowed (a self-hosted model server's settings)
    with pytest.raises(UnsafeURLError, match=r"inside it|NAT64"):
        check_address(address, "host", allow_private=True, allow_loopback=True)
    with pytest.raises(UnsafeURLError):
        check_url(f"http://[{address}]/v1", allow_private=True, allow_loopback=True)


@pytest.mark.parametrize("address", ["2002:808:808::1", "64:ff9b::808:808", "2606:4700:4700::1111"])
def test_ipv6_forms_of_public_addresses_still_pass(address):
    check_address(address, "host", allow_private=False)


# --- the outbound client: pinned, checked per connection, no redirects ---------------------------------


def _resolving(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    real, asked = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        host = host.decode() if isinstance(host, bytes) else host
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        queue = answers[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


LOOPBACK_OK = Policy(allow_private=False, allow_loopback=True)
STRICT = Policy(allow_private=False, allow_loopback=False)


def test_the_client_connects_to_the_address_it_checked_and_sends_the_name_as_host(monkeypatch):
    with http_server() as server:
        port = server.url.rsplit(":", 1)[1]
        asked = _resolving(monkeypatch, {"hooks.example.test": ["127.0.0.1"]})
        with sync_client(LOOPBACK_OK) as client:
            assert client.get(f"http://hooks.example.test:{port}/x").status_code == 200
    assert asked == ["hooks.example.test"]
    [(_, _, headers)] = server.requests
    assert headers["Host"] == f"hooks.example.test:{port}"


def test_a_rebound_name_is_refused_at_connect_time(monkeypatch):
    with http_server() as server:
        port = server.url.rsplit(":", 1)[1]
        _resolving(monkeypatch, {"hooks.example.test": ["93.184.216.34", "127.0.0.1"]})
        url = f"http://hooks.example.test:{port}/x"
        check_url(url, allow_private=False)  # when saved: public
        with sync_client(STRICT) as client, pytest.raises(UnsafeURLError, match=r"127\.0\.0\.1"):
            client.get(url)  # when called: loopback
    assert server.requests == []


def test_a_name_with_any_refused_address_is_refused(monkeypatch):
    _resolving(monkeypatch, {"mixed.example.test": ["2002:7f00:1::"]})
    with sync_client(Policy()) as client, pytest.raises(UnsafeURLError, match="inside it"):
        client.get("http://mixed.example.test/x")


def test_the_policy_is_read_at_every_connection():
    allowed = {"loopback": True}
    policy = lambda: Policy(allow_private=False, allow_loopback=allowed["loopback"])  # noqa: E731
    with http_server() as server, sync_client(policy) as client:
        assert client.get(f"{server.url}/a", headers={"Connection": "close"}).status_code == 200
        allowed["loopback"] = False
        with pytest.raises(UnsafeURLError):
            client.get(f"{server.url}/b")
    assert [path for _, path, _ in server.requests] == ["/a"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_no_redirect_is_followed_even_when_the_caller_asks(status):
    with (
        redirect_to_internal(status) as (redirecting, internal),
        sync_client(LOOPBACK_OK) as client,
        pytest.raises(RedirectRefusedError) as refused,
    ):
        client.get(f"{redirecting.url}/x", follow_redirects=True)
    assert refused.value.status_code == status and refused.value.location.endswith("/metrics")
    assert internal.requests == []


async def test_the_async_client_is_guarded_the_same_way():
    with redirect_to_internal(307) as (redirecting, internal):
        async with async_client(LOOPBACK_OK) as client:
            with pytest.raises(RedirectRefusedError):
                await client.post(f"{redirecting.url}/v1/chat/completions", json={}, follow_redirects=True)
        async with async_client(STRICT) as client:
            with pytest.raises(UnsafeURLError, match=r"127\.0\.0\.1"):
                await client.get(f"{redirecting.url}/x")
    assert len(redirecting.requests) == 1 and internal.requests == []
