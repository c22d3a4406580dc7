"""A tenant's OpenAI-compatible base URL is checked where the platform connects, not only when saved:
no redirect is followed (a 307 to an internal service, a 302 to the platform's own /metrics), the
address connected to is the one checked, and today's settings apply to URLs saved under older ones."""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import replace

import pytest
from django_tenants.utils import tenant_context

from tests.outbound import http_server, redirect_to_internal
from voice.providers.base import Attempt, ChatMessage, ErrorKind, ProviderError
from voice.providers.registry import RoutingConfig, providers_for
from voice.queries import routing_config_without_keys
from voice.router.candidates import Candidate

HELLO = [ChatMessage(role="user", content="hello")]


def _model() -> Candidate:
    """A self-hosted model of its own name: its circuit breaker starts closed in every test."""
    return Candidate("openai_compatible", f"llama-{uuid.uuid4().hex[:8]}")


def _config(base_url: str, model: Candidate | None = None) -> RoutingConfig:
    return RoutingConfig(llm=(model or _model(),), stt=(), tts=(), openai_compatible_base_url=base_url, llm_bound_s=5.0)


async def _refusal(config: RoutingConfig) -> Attempt:
    """How the routed call to the self-hosted model failed (its one attempt)."""
    chat = providers_for(config).chat
    with pytest.raises(ProviderError) as failed:
        async for _ in chat.stream(HELLO):
            pass
    assert failed.value.route is not None
    [attempt] = failed.value.route.attempts
    return attempt


@pytest.fixture
def loopback_allowed(settings) -> None:
    # The first hop is a test server on 127.0.0.1: allowed here on purpose, so only the redirect is refused.
    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = True


@pytest.mark.parametrize(("status", "path"), [(307, "/internal/admin"), (302, "/metrics")])
async def test_a_redirect_to_an_internal_address_is_not_followed(loopback_allowed, status, path):
    with redirect_to_internal(status, path) as (base, internal):
        error = await _refusal(_config(f"{base.url}/v1"))

    assert len(base.requests) == 1  # asked once
    assert internal.requests == []  # the internal service never was
    assert error.outcome == ErrorKind.BAD_REQUEST
    assert "redirect" in error.error and "not followed" in error.error
    assert "internal_secret" not in error.error


@pytest.mark.django_db
def test_a_url_saved_while_loopback_was_allowed_is_refused_once_the_settings_refuse_it(alpha, settings):
    from voice.models import Assistant

    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = True
    with http_server() as model_server, tenant_context(alpha.organization):
        assistant = Assistant.objects.order_by("pk").first()
        model = _model()
        assistant.llm_provider, assistant.llm_model = model.provider, model.model
        assistant.openai_compatible_base_url = f"{model_server.url}/v1"
        assistant.full_clean()  # allowed when saved
        assistant.save()
        # as a session reads it (speech left out: only the chat model calls the base URL)
        config = replace(routing_config_without_keys(Assistant.objects.get(pk=assistant.pk)), stt=(), tts=())

        settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = False  # production settings
        error = asyncio.run(_refusal(config))

    assert model_server.requests == []
    assert error.outcome == ErrorKind.BAD_REQUEST and "127.0.0.1" in error.error


def _resolver(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """getaddrinfo answering ``answers[name]`` in turn (the last one repeats); asked names are listed."""
    real, asked = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode()
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        queue = answers[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.django_db
def test_a_name_that_looked_public_when_saved_and_resolves_to_loopback_at_the_call_is_refused(
    alpha, settings, monkeypatch
):
    from voice.models import Assistant

    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = False
    with http_server() as model_server:
        port = model_server.url.rsplit(":", 1)[1]
        # DNS rebinding: a public address when the URL is checked, loopback when the platform connects.
        _resolver(monkeypatch, {"models.example.test": ["93.184.216.34", "127.0.0.1"]})
        assistant = Assistant(name="x", openai_compatible_base_url=f"http://models.example.test:{port}/v1")
        assistant.clean()  # saved: the name looked public
        error = asyncio.run(_refusal(_config(assistant.openai_compatible_base_url)))

    assert model_server.requests == []
    assert error.outcome == ErrorKind.BAD_REQUEST and "127.0.0.1" in error.error


async def test_the_connection_goes_to_the_checked_address_with_the_name_in_the_host_header(
    loopback_allowed, monkeypatch
):
    with http_server(body=b'{"error": {"message": "no such model"}}', status=404) as model_server:
        port = model_server.url.rsplit(":", 1)[1]
        asked = _resolver(monkeypatch, {"models.example.test": ["127.0.0.1"]})
        error = await _refusal(_config(f"http://models.example.test:{port}/v1"))

    assert "HTTP 404" in error.error  # it reached the server, through the address checked
    [(_, path, headers)] = model_server.requests
    assert path == "/v1/chat/completions" and headers["Host"] == f"models.example.test:{port}"
    assert asked == ["models.example.test"]  # resolved once, by the guard; connected by address
