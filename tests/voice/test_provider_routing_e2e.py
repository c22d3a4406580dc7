"""Real providers end to end: a daphne process whose OpenAI and xAI are local fakes speaking the real
wire formats (SSE over HTTP, and xAI's gRPC chat service), reached through the real SDKs."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from aura.embedded_services import free_port
from conversations.models import Turn
from tests import seeds
from tests.processes import python_module, running, server_environment
from tests.servers import SIMULATED_LATENCY_ENV, Server, answers_200
from tests.voice.client import VoiceClient, read_wav, request_session, silence
from voice.actions import do_set_provider_key
from voice.models import Assistant, ProviderKey

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PLATFORM_OPENAI_KEY = "sk-platform-openai-0000"
TENANT_OPENAI_KEY = "sk-tenant-alpha-1234567"


@dataclass(frozen=True)
class ProviderStack:
    server: Server
    openai_url: str  # the fake OpenAI's base URL, e.g. http://127.0.0.1:PORT/v1


def _listening(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def _tcp_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def provider_stack(django_db_setup, django_db_blocker) -> Iterator[ProviderStack]:
    with django_db_blocker.unblock():
        seeds.restore()  # a transactional test before this module flushed the platform's host
    openai_port, xai_port, port = free_port(), free_port(), free_port()
    openai_url = f"http://127.0.0.1:{openai_port}"
    fake_openai = python_module("tests.fakes.openai_server", "--port", str(openai_port))
    fake_xai = python_module("tests.fakes.xai_server", "--port", str(xai_port))
    env = server_environment(
        AURA_PLATFORM_URL=f"http://localhost:{port}",
        OPENAI_API_KEY=PLATFORM_OPENAI_KEY,
        OPENAI_BASE_URL=f"{openai_url}/v1",
        XAI_API_KEY="xai-platform-key-0000",
        XAI_API_HOST=f"127.0.0.1:{xai_port}",
        XAI_INSECURE="1",
        AURA_TOOL_URLS_ALLOW_LOOPBACK="1",  # the HTTP tool test's receiver is on this machine
        **SIMULATED_LATENCY_ENV,
    )
    daphne = python_module("aura.server", "-b", "127.0.0.1", "-p", str(port), "aura.asgi:application")
    with (
        running(fake_openai, ready=lambda: _listening(f"{openai_url}/_fake/requests"), log_name="fake-openai"),
        running(fake_xai, ready=lambda: _tcp_open(xai_port), log_name="fake-xai"),
        running(
            daphne, ready=lambda: answers_200(f"http://localhost:{port}/healthz"), log_name="daphne-providers", env=env
        ),
    ):
        yield ProviderStack(Server(base_url=f"http://localhost:{port}", port=port), openai_url)


def _fake_openai_requests(stack: ProviderStack) -> list[dict]:
    urllib.request.urlopen(urllib.request.Request(f"{stack.openai_url}/_fake/reset", method="POST"), timeout=2)
    return []


def _recorded(stack: ProviderStack) -> list[dict]:
    with urllib.request.urlopen(f"{stack.openai_url}/_fake/requests", timeout=2) as response:
        return json.loads(response.read())


def _configure(tenant, **fields: object) -> None:
    with tenant_context(tenant.organization):
        Assistant.objects.filter(is_default=True).update(**fields)


def _turns(tenant, conversation_id: str) -> list[Turn]:
    with tenant_context(tenant.organization):
        return list(Turn.objects.filter(conversation_id=conversation_id).order_by("index"))


@pytest.fixture
def assistant_reset(alpha, beta) -> Iterator[None]:
    """Put each tenant's default assistant back as it was (greeting included: later modules expect it)."""
    saved = {}
    for tenant in (alpha, beta):
        with tenant_context(tenant.organization):
            saved[tenant.organization.pk] = Assistant.objects.filter(is_default=True).values().get()
    yield
    for tenant in (alpha, beta):
        with tenant_context(tenant.organization):
            ProviderKey.objects.all().delete()
            Assistant.objects.filter(is_default=True).update(**saved[tenant.organization.pk])


async def _session(stack: ProviderStack, tenant) -> tuple[VoiceClient, str]:
    key = await sync_to_async(lambda: tenant.widget_key.key)()
    status, body = await asyncio.to_thread(request_session, stack.server.base_url, key, tenant.origin)
    assert status == 200, body
    client = await VoiceClient.connect(body["ws_url"], tenant.origin)
    return client, body["conversation_id"]


async def _ask(client: VoiceClient, text: str, response_id: int) -> dict:
    await client.send({"type": "input.text", "text": text})
    return await client.wait_for("response.done", response_id=response_id)


async def _assistant_turn(tenant, conversation_id: str) -> Turn:
    for _ in range(50):
        turns = await sync_to_async(_turns)(tenant, conversation_id)
        replies = [t for t in turns if t.role == "assistant" and t.route]
        if replies:
            return replies[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no routed assistant turn stored for {conversation_id}")


async def test_a_hanging_openai_model_fails_over_to_grok_within_the_bound(provider_stack, alpha, assistant_reset):
    await sync_to_async(_configure)(
        alpha,
        greeting="",
        llm_provider="openai",
        llm_model="fake-hang",
        router_policy="fallback",
        llm_fallbacks=["xai:grok-3-mini"],
        llm_first_token_timeout_ms=400,
    )
    client, conversation_id = await _session(provider_stack, alpha)
    created = await client.start(16000, text_only=True)
    assert created["providers"]["llm"] == "openai/fake-hang"
    done = await _ask(client, "Are you open today?", response_id=1)
    assert done["text"] == "You said: Are you open today?."
    assert 400 <= done["metrics"]["llm_first_token_ms"] < 1400
    await client.close()

    turn = await _assistant_turn(alpha, conversation_id)
    assert (turn.provider, turn.model) == ("xai", "grok-3-mini")
    llm = turn.route["llm"]
    assert llm["policy"] == "fallback" and llm["chosen"] == "xai:grok-3-mini"
    assert [(a["provider"], a["outcome"]) for a in llm["attempts"]] == [("openai", "timeout"), ("xai", "ok")]
    assert turn.input_tokens > 0 and turn.output_tokens > 0  # usage from Grok's stream


async def test_a_tenants_own_key_is_used_instead_of_the_platforms(provider_stack, alpha, beta, assistant_reset):
    await sync_to_async(_fake_openai_requests)(provider_stack)
    for tenant in (alpha, beta):
        await sync_to_async(_configure)(tenant, greeting="", llm_provider="openai", llm_model="gpt-4o-mini")

    def set_key() -> None:
        with tenant_context(alpha.organization):
            do_set_provider_key(provider="openai", api_key=TENANT_OPENAI_KEY)

    await sync_to_async(set_key)()
    for tenant, expected in ((alpha, TENANT_OPENAI_KEY), (beta, PLATFORM_OPENAI_KEY)):
        client, _ = await _session(provider_stack, tenant)
        await client.start(16000, text_only=True)
        done = await _ask(client, "hello", response_id=1)
        assert done["text"] == "You said: hello."
        await client.close()
        chats = [r for r in await sync_to_async(_recorded)(provider_stack) if r["path"].endswith("/chat/completions")]
        assert chats[-1]["headers"]["authorization"] == f"Bearer {expected}"


async def test_openai_speech_in_and_out_through_the_sdk(provider_stack, alpha, assistant_reset):
    await sync_to_async(_configure)(
        alpha,
        greeting="",
        llm_provider="openai",
        llm_model="gpt-4o-mini",
        stt_provider="openai",
        stt_model="gpt-4o-mini-transcribe",
        tts_provider="openai",
        tts_model="gpt-4o-mini-tts",
    )
    client, conversation_id = await _session(provider_stack, alpha)
    created = await client.start(16000)
    assert created["simulated"] is False
    speech, rate = read_wav("hours.wav")
    await client.stream(speech + silence(300), rate)
    transcript = await client.wait_for("transcript.final")
    assert transcript["text"] == "hello from the fake transcriber"
    done = await client.wait_for("response.done", response_id=1)
    assert done["text"] == "You said: hello from the fake transcriber."
    assert done["metrics"]["audio_ms"] > 500  # the fake's 24 kHz PCM, streamed through
    assert sum(size for _, size in client.audio.get(1, [])) > 0
    await client.close()
    turn = await _assistant_turn(alpha, conversation_id)
    assert turn.route["tts"]["chosen"] == "openai:gpt-4o-mini-tts"


async def test_when_speech_to_text_fails_the_visitor_is_told_and_the_session_goes_on(
    provider_stack, alpha, assistant_reset
):
    await sync_to_async(_configure)(
        alpha, greeting="", stt_provider="openai", stt_model="fake-500", llm_provider="openai", llm_model="gpt-4o-mini"
    )
    client, _ = await _session(provider_stack, alpha)
    await client.start(16000)
    speech, rate = read_wav("hours.wav")
    await client.stream(speech + silence(300), rate)
    error = await client.wait_for("error")
    assert error["code"] == "speech_to_text_failed"
    done = await _ask(client, "still there?", response_id=1)
    assert done["text"] == "You said: still there?."
    await client.close()


async def test_when_every_voice_fails_the_reply_arrives_as_text(provider_stack, alpha, assistant_reset):
    await sync_to_async(_configure)(
        alpha,
        greeting="",
        llm_provider="openai",
        llm_model="gpt-4o-mini",
        tts_provider="openai",
        tts_model="fake-500",
        tts_fallbacks=["openai:fake-hang"],
        tts_first_byte_timeout_ms=300,
    )
    client, conversation_id = await _session(provider_stack, alpha)
    await client.start(16000)
    done = await _ask(client, "hello", response_id=1)
    assert done["text"] == "You said: hello."
    assert not client.audio.get(1)
    assert any(e.get("code") == "speech_failed" for e in client.of_type("error"))
    await client.close()
    turn = await _assistant_turn(alpha, conversation_id)
    assert [a["outcome"] for a in turn.route["tts"]["attempts"]] == ["unavailable", "timeout"]


async def test_a_tool_round_through_the_openai_sdk_keeps_the_wire_format(provider_stack, alpha, assistant_reset):
    """The fake OpenAI calls the offered tool for "weather"; the platform runs the tenant's HTTP tool and
    sends the result back as OpenAI expects: the assistant's tool_calls message, then a tool message."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from voice.models import HttpTool

    class Weather(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arguments = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["arguments"]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"forecast": f"sunny in {arguments['city']}"}).encode())

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Weather)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()

    def create_tool() -> HttpTool:
        with tenant_context(alpha.organization):
            tool = HttpTool.objects.create(
                name="get_weather",
                description="The weather in a city",
                parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                url=f"http://127.0.0.1:{receiver.server_address[1]}/weather",
            )
            tool.assistants.add(Assistant.objects.get(is_default=True))
            return tool

    await sync_to_async(_fake_openai_requests)(provider_stack)
    # The fake calls the first tool offered: the tenant's HTTP tool must be the only one.
    await sync_to_async(_configure)(
        alpha, greeting="", llm_provider="openai", llm_model="gpt-4o-mini", tools=[], remember_visitors=False
    )
    tool = await sync_to_async(create_tool)()
    try:
        client, conversation_id = await _session(provider_stack, alpha)
        await client.start(16000, text_only=True)
        done = await _ask(client, "What is the weather like?", response_id=1)
        await client.close()
    finally:
        await sync_to_async(lambda: _in_alpha(alpha, tool.delete))()
        receiver.shutdown()

    assert done["text"] == 'The tool said: {"forecast":"sunny in Paris"}.'
    assert client.first("response.tool").event["name"] == "get_weather"
    chats = [r for r in await sync_to_async(_recorded)(provider_stack) if r["path"].endswith("/chat/completions")]
    second = chats[-1]["json"]["messages"]
    assert second[-2]["role"] == "assistant" and second[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert second[-1] == {
        "role": "tool",
        "content": '{"forecast":"sunny in Paris"}',
        "tool_call_id": second[-2]["tool_calls"][0]["id"],
    }
    turn = await _assistant_turn(alpha, conversation_id)
    assert turn.input_tokens > 0 and len(turn.route.get("llm_rounds", [])) == 2


def _in_alpha(tenant, fn):
    with tenant_context(tenant.organization):
        return fn()


async def test_the_voice_answers_an_angry_visitor_calmly_and_a_calm_one_as_usual(
    provider_stack, alpha, assistant_reset
):
    await sync_to_async(_configure)(
        alpha,
        greeting="",
        tts_provider="openai",
        tts_model="gpt-4o-mini-tts",
        voice_follows_emotion=True,
        speech_speed=1.0,
    )
    client, _ = await _session(provider_stack, alpha)
    await client.start(16000)
    await asyncio.to_thread(_fake_openai_requests, provider_stack)

    await _ask(client, "This is absolutely unacceptable, you are useless!", response_id=1)
    angry = [r["json"] for r in await asyncio.to_thread(_recorded, provider_stack) if r["path"] == "/v1/audio/speech"]
    await asyncio.to_thread(_fake_openai_requests, provider_stack)
    await _ask(client, "What are your opening hours on Saturday?", response_id=2)
    calm = [r["json"] for r in await asyncio.to_thread(_recorded, provider_stack) if r["path"] == "/v1/audio/speech"]
    await client.close()

    assert angry and all("calm" in r["instructions"].lower() and r["speed"] < 1.0 for r in angry), angry
    assert calm and all("instructions" not in r and r["speed"] == 1.0 for r in calm), calm


async def test_an_upset_visitor_is_offered_a_human_in_the_models_instructions(provider_stack, alpha, assistant_reset):
    await sync_to_async(_configure)(
        alpha,
        greeting="",
        llm_provider="openai",
        llm_model="gpt-4o-mini",
        tools=["handoff"],
        escalate_upset_visitors=True,
    )
    client, _ = await _session(provider_stack, alpha)
    await client.start(16000, text_only=True)

    def system_prompts() -> list[str]:
        chats = [r for r in _recorded(provider_stack) if r["path"].endswith("/chat/completions")]
        return [chat["json"]["messages"][0]["content"] for chat in chats]

    await sync_to_async(_fake_openai_requests)(provider_stack)
    await _ask(client, "I'm so fed up with this, it still doesn't work", response_id=1)
    upset = await sync_to_async(system_prompts)()
    await sync_to_async(_fake_openai_requests)(provider_stack)
    await _ask(client, "Do you deliver to the station?", response_id=2)
    calm = await sync_to_async(system_prompts)()
    await client.close()

    assert upset and "The visitor sounds frustrated." in upset[0] and "(the handoff tool)" in upset[0], upset
    assert calm and "The visitor sounds" not in calm[0]
