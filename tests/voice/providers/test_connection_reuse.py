"""Provider connections are kept warm: a turn reuses the connection of the turn before (no new TCP or
TLS handshake), whichever session or tenant key made it, and a kept connection still obeys the outbound
policy of the moment it is reused. Counted on the fakes' side: the TCP connections they accepted."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpcore2._async.http11 as http11
import pytest

from core import netguard
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.xai_server import FakeXAIServer
from voice.providers.base import ChatMessage, ErrorKind, ProviderError, TextDelta
from voice.providers.openai_api import OpenAIChat, OpenAISpeech, OpenAISpeechToText, openai_client
from voice.providers.registry import RoutingConfig, providers_for
from voice.providers.xai_api import XAIChat, close_xai_clients, xai_client
from voice.router.candidates import Candidate

HELLO = [ChatMessage(role="user", content="hello")]
TURN_GAP_S = 20.0  # the visitor listens to a reply and speaks again: longer than the SDK's 5 s keep-alive


@pytest.fixture
def loopback_allowed(settings) -> None:
    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = True  # the fake listens on 127.0.0.1


def _session_config(fake: FakeOpenAIServer, model: str) -> RoutingConfig:
    """What a session of an assistant on a self-hosted OpenAI-compatible server builds its providers from."""
    llm = (Candidate("openai_compatible", model),)
    return RoutingConfig(llm=llm, stt=(), tts=(), openai_compatible_base_url=fake.base_url, llm_bound_s=5.0)


async def _turn(config: RoutingConfig) -> str:
    """One turn of a new session: its providers are built anew, as a session does."""
    chat = providers_for(config).chat
    return "".join([event.text async for event in chat.stream(HELLO) if isinstance(event, TextDelta)])


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The connection pool's clock moves on by ``seconds`` (an idle gap, without waiting for it)."""

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return time.monotonic() + seconds

    monkeypatch.setattr(http11, "time", Clock)


async def test_turns_of_two_sessions_share_one_connection(fake, loopback_allowed):
    config = _session_config(fake, f"llama-{uuid.uuid4().hex[:8]}")

    assert await _turn(config) == "You said: hello."
    assert await _turn(config) == "You said: hello."

    assert len(fake.requests) == 2
    assert fake.connections == 1


async def test_a_turn_after_a_conversational_pause_reuses_the_connection(fake, monkeypatch):
    chat = OpenAIChat(openai_client(api_key="sk-test-pause", base_url=fake.base_url), model="gpt-4o-mini")
    [_ async for _ in chat.stream(HELLO)]

    _later(monkeypatch, TURN_GAP_S)
    [_ async for _ in chat.stream(HELLO)]

    assert len(fake.requests) == 2
    assert fake.connections == 1


async def test_speech_chat_and_voice_of_different_tenants_share_the_pool(fake):
    # A key is a header, not a connection: a tenant's first turn uses the connection another one warmed.
    one = openai_client(api_key="sk-tenant-one-1111", base_url=fake.base_url)
    two = openai_client(api_key="sk-tenant-two-2222", base_url=fake.base_url)
    pcm = b"\x00\x00" * 8000

    [_ async for _ in OpenAIChat(one, model="gpt-4o-mini").stream(HELLO)]
    [_ async for _ in OpenAISpeechToText(two, model="whisper-1").transcribe(pcm, 16000, language="en")]
    [_ async for _ in OpenAISpeech(one, model="gpt-4o-mini-tts").synthesize("Hi.", voice="alloy", speed=1)]

    assert [request.authorization for request in fake.requests] == [
        "Bearer sk-tenant-one-1111",
        "Bearer sk-tenant-two-2222",
        "Bearer sk-tenant-one-1111",
    ]
    assert fake.connections == 1


async def test_a_kept_connection_is_not_reused_once_the_policy_refuses_its_address(fake, settings):
    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = True
    config = _session_config(fake, f"llama-{uuid.uuid4().hex[:8]}")
    assert await _turn(config) == "You said: hello."

    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = False  # tightened while the connection is kept
    with pytest.raises(ProviderError) as refused:
        await _turn(config)

    [attempt] = refused.value.route.attempts
    assert attempt.outcome == ErrorKind.BAD_REQUEST and "127.0.0.1" in attempt.error
    assert len(fake.requests) == 1  # the kept connection was dropped, and the new one refused

    settings.AURA_PROVIDER_URLS_ALLOW_LOOPBACK = True
    assert await _turn(config) == "You said: hello."
    assert fake.connections == 2


async def test_an_old_connection_is_replaced_so_the_name_is_resolved_and_checked_again(fake, monkeypatch):
    chat = OpenAIChat(openai_client(api_key="sk-test-age", base_url=fake.base_url), model="gpt-4o-mini")
    [_ async for _ in chat.stream(HELLO)]

    monkeypatch.setattr(netguard, "MAX_CONNECTION_AGE_S", 0.0)
    [_ async for _ in chat.stream(HELLO)]

    assert fake.connections == 2


def test_the_blocking_client_keeps_its_connection_and_the_policy_too(fake):
    policy = [netguard.Policy(allow_loopback=True)]
    with netguard.sync_client(lambda: policy[0]) as client:
        assert client.get(f"{fake.base_url}/models").status_code == 200
        assert client.get(f"{fake.base_url}/models").status_code == 200
        assert fake.connections == 1

        policy[0] = netguard.Policy(allow_loopback=False)
        with pytest.raises(netguard.UnsafeURLError, match=r"127\.0\.0\.1"):
            client.get(f"{fake.base_url}/models")
    assert fake.connections == 1


# --- xAI: one gRPC channel (HTTP/2) per key, host and event loop ----------------------------------------


@pytest.fixture
async def fake_xai() -> AsyncIterator[FakeXAIServer]:
    async with FakeXAIServer() as server:
        yield server
    await close_xai_clients()


async def test_xai_turns_of_two_sessions_share_one_connection(fake_xai):
    for _ in range(2):  # each session asks for its client, as the registry does
        client = xai_client(api_key="xai-TestKey0123456789abcdef", api_host=fake_xai.address, insecure=True)
        events = [event async for event in XAIChat(client, model="grok-4").stream(HELLO)]
        assert "".join(event.text for event in events if isinstance(event, TextDelta)) == "You said: hello."

    peers = {request.peer for request in fake_xai.requests}
    assert len(fake_xai.requests) == 2 and len(peers) == 1, peers
