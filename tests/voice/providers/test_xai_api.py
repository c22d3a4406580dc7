"""xAI chat through the real ``xai-sdk`` gRPC client against the fake xAI service (no database)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest
import xai_sdk
from xai_sdk.chat import user as xai_user

from tests.fakes.xai_server import FakeXAIServer
from voice.providers.base import ChatEvent, ChatMessage, ErrorKind, ProviderError, TextDelta, ToolCall, ToolSpec, Usage
from voice.providers.xai_api import XAIChat, close_xai_clients, map_xai_error, xai_client

ROOT = Path(__file__).resolve().parents[3]
KEY = "xai-TestKey0123456789abcdefSECRET"
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
async def fake_xai() -> AsyncIterator[FakeXAIServer]:
    async with FakeXAIServer() as server:
        yield server
    await close_xai_clients()


def chat_for(server: FakeXAIServer, model: str, *, api_key: str = KEY, **kwargs: object) -> XAIChat:
    return XAIChat(xai_client(api_key=api_key, api_host=server.address, insecure=True), model=model, **kwargs)


async def collect(
    chat: XAIChat, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
) -> tuple[list[ChatEvent], ProviderError | None]:
    events: list[ChatEvent] = []
    try:
        async for event in chat.stream(messages, tools=tools):
            events.append(event)
    except ProviderError as error:
        return events, error
    return events, None


async def collect_within(
    seconds: float, chat: XAIChat, messages: Sequence[ChatMessage]
) -> tuple[list[ChatEvent], ProviderError | None]:
    async with asyncio.timeout(seconds):  # as the router bounds a turn
        return await collect(chat, messages)


def texts(events: list[ChatEvent]) -> list[str]:
    return [event.text for event in events if isinstance(event, TextDelta)]


async def test_streams_the_reply_word_by_word_then_one_usage(fake_xai):
    messages = [ChatMessage("system", "You are terse."), ChatMessage("user", "hello there")]

    events, error = await collect(chat_for(fake_xai, "grok-4"), messages)

    assert error is None
    # Every chunk repeats the assistant role: one delta per word, none empty, nothing twice.
    assert texts(events) == ["You", " said:", " hello", " there."]
    assert [type(event) for event in events[-1:]] == [Usage]
    assert sum(isinstance(event, Usage) for event in events) == 1
    # The fake counts words: 3 + 2 in the prompt, 4 in the reply (each chunk carries a running total).
    assert events[-1] == Usage(input_tokens=5, output_tokens=4)
    (request,) = fake_xai.requests
    assert request.method == "GetCompletionChunk"
    assert request.model == "grok-4"
    assert [(m.role, m.content) for m in request.messages] == [("system", "You are terse."), ("user", "hello there")]
    assert request.tools == ()


async def test_reasoning_is_not_spoken_but_is_counted_as_output(fake_xai):
    events, error = await collect(chat_for(fake_xai, "fake-reasoning"), [ChatMessage("user", "think")])

    assert error is None
    assert texts(events) == ["You", " said:", " think."]
    assert events[-1] == Usage(input_tokens=1, output_tokens=3 + 3)


async def test_tool_call_round_trip(fake_xai):
    chat = chat_for(fake_xai, "grok-4", max_tokens=200)
    asked = [ChatMessage("system", "Be helpful."), ChatMessage("user", "What is the weather like?")]

    events, error = await collect(chat, asked, [WEATHER])

    assert error is None
    assert texts(events) == []
    (call,) = [event for event in events if isinstance(event, ToolCall)]
    assert call.name == "get_weather"
    assert call.id
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert isinstance(events[-1], Usage)
    assert events[-1].output_tokens == 2
    first = fake_xai.requests[0]
    assert first.max_tokens == 200
    assert [(tool.name, tool.description, tool.parameters) for tool in first.tools] == [
        (WEATHER.name, WEATHER.description, WEATHER.parameters)
    ]

    answered = [
        *asked,
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "sunny and 21 degrees", tool_call_id=call.id),
    ]
    events, error = await collect(chat, answered, [WEATHER])

    assert error is None
    assert "".join(texts(events)) == "The tool said: sunny and 21 degrees."
    assert not any(isinstance(event, ToolCall) for event in events)
    second = fake_xai.requests[1]
    assistant, tool = second.messages[2], second.messages[3]
    assert assistant.role == "assistant"
    assert [(c.id, c.name, c.arguments) for c in assistant.tool_calls] == [(call.id, call.name, call.arguments)]
    assert (tool.role, tool.content, tool.tool_call_id) == ("tool", "sunny and 21 degrees", call.id)


async def test_tool_arguments_that_are_not_json_are_passed_on_as_they_came(fake_xai):
    # The SDK's tracing would json.loads them after the stream and raise; the provider turns that off.
    events, error = await collect(
        chat_for(fake_xai, "fake-bad-tool-args"), [ChatMessage("user", "weather?")], [WEATHER]
    )

    assert error is None
    assert [event.arguments for event in events if isinstance(event, ToolCall)] == ['{"city": ']
    assert isinstance(events[-1], Usage)


@pytest.mark.parametrize(
    ("model", "kind", "retry_after_s"),
    [
        ("fake-429", ErrorKind.RATE_LIMITED, 7.0),
        ("fake-500", ErrorKind.UNAVAILABLE, None),
        ("fake-unavailable", ErrorKind.UNAVAILABLE, None),
        ("fake-badkey", ErrorKind.BAD_REQUEST, None),
    ],
)
async def test_errors_map_to_their_kind_without_sdk_retries(fake_xai, model, kind, retry_after_s):
    events, error = await collect(chat_for(fake_xai, model), [ChatMessage("user", "hi")])

    assert events == []
    assert error is not None
    assert (error.kind, error.retry_after_s, error.provider) == (kind, retry_after_s, "xai")
    # The SDK's default channel options would retry UNAVAILABLE five times; the router decides instead.
    assert len(fake_xai.requests) == 1


async def test_a_cut_stream_yields_the_text_before_the_cut_then_unavailable(fake_xai):
    events, error = await collect(chat_for(fake_xai, "fake-cut"), [ChatMessage("user", "tell me a story")])

    assert texts(events) == ["You", " said:"]
    assert not any(isinstance(event, Usage) for event in events)
    assert error is not None
    assert error.kind is ErrorKind.UNAVAILABLE


async def test_an_outer_timeout_cancels_a_hung_call_promptly_and_the_client_still_works(fake_xai):
    chat = chat_for(fake_xai, "fake-hang")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await collect_within(0.3, chat, [ChatMessage("user", "hello")])
    assert time.monotonic() - started < 1.0

    deadline = time.monotonic() + 1.0
    while fake_xai.cancellations == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert fake_xai.cancellations == 1  # the RPC was cancelled, not left running on the server

    events, error = await collect(chat_for(fake_xai, "grok-4"), [ChatMessage("user", "still there")])
    assert error is None
    assert "".join(texts(events)) == "You said: still there."


async def test_a_consumer_that_stops_early_cancels_the_rpc():
    async with FakeXAIServer(word_delay_s=0.05) as server:
        stream = chat_for(server, "grok-4").stream([ChatMessage("user", "one two three four five six")])
        first = await anext(stream)
        await stream.aclose()
        assert first == TextDelta("You")

        # A bound against a hang, not a speed figure: under a loaded suite (three workers on two cores)
        # gRPC delivered the cancellation to the server after more than a second.
        deadline = time.monotonic() + 10.0
        while server.cancellations == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert server.cancellations == 1
    await close_xai_clients()


async def test_the_call_deadline_maps_to_timeout(fake_xai):
    client = xai_client(api_key=KEY, api_host=fake_xai.address, insecure=True, timeout_s=0.2)

    events, error = await collect(XAIChat(client, model="fake-hang"), [ChatMessage("user", "hi")])

    assert events == []
    assert error is not None
    assert error.kind is ErrorKind.TIMEOUT


async def test_slow_first_token(fake_xai):
    started = time.monotonic()
    stream = chat_for(fake_xai, "fake-slow-200").stream([ChatMessage("user", "hi")])
    first = await anext(stream)
    waited = time.monotonic() - started
    await stream.aclose()

    assert first == TextDelta("You")
    assert 0.2 <= waited < 1.0


async def test_the_authorization_metadata_carries_exactly_the_given_key(fake_xai):
    other_key = "xai-AnotherTenantKey987654321"
    await collect(chat_for(fake_xai, "grok-4"), [ChatMessage("user", "a")])
    await collect(chat_for(fake_xai, "grok-4", api_key=other_key), [ChatMessage("user", "b")])

    assert [request.authorization for request in fake_xai.requests] == [f"Bearer {KEY}", f"Bearer {other_key}"]


async def test_the_key_never_appears_in_errors(fake_xai):
    # The fake quotes the whole key back in its UNAUTHENTICATED details (xAI itself masks it).
    for key in (KEY, "plain-key-without-prefix-42"):
        _, error = await collect(chat_for(fake_xai, "fake-badkey", api_key=key), [ChatMessage("user", "hi")])
        assert error is not None
        assert error.kind is ErrorKind.BAD_REQUEST
        assert "UNAUTHENTICATED" in str(error)
        shown = "".join(traceback.format_exception(error)) + repr(error.args)
        assert key not in shown
    assert len(fake_xai.requests) == 2


def test_map_xai_error_redacts_key_shapes_it_was_not_told_about():
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        details="key xai-abcdefghijklmnop123 refused; header was Bearer sk-live-secret",
    )

    mapped = map_xai_error(error, "xai")

    assert mapped.kind is ErrorKind.BAD_REQUEST
    assert "xai-abcdefghijklmnop123" not in str(mapped)
    assert "sk-live-secret" not in str(mapped)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ErrorKind.RATE_LIMITED),
        (grpc.StatusCode.UNAVAILABLE, ErrorKind.UNAVAILABLE),
        (grpc.StatusCode.INTERNAL, ErrorKind.UNAVAILABLE),
        (grpc.StatusCode.UNKNOWN, ErrorKind.UNAVAILABLE),
        (grpc.StatusCode.ABORTED, ErrorKind.UNAVAILABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ErrorKind.TIMEOUT),
        (grpc.StatusCode.INVALID_ARGUMENT, ErrorKind.BAD_REQUEST),
        (grpc.StatusCode.NOT_FOUND, ErrorKind.BAD_REQUEST),
        (grpc.StatusCode.UNAUTHENTICATED, ErrorKind.BAD_REQUEST),
        (grpc.StatusCode.PERMISSION_DENIED, ErrorKind.BAD_REQUEST),
        (grpc.StatusCode.FAILED_PRECONDITION, ErrorKind.BAD_REQUEST),
    ],
)
def test_map_xai_error_status_codes(code, kind):
    trailing = grpc.aio.Metadata(("retry-after", "2.5"))
    mapped = map_xai_error(grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details="x"), "grok")

    assert (mapped.kind, mapped.provider, mapped.retry_after_s) == (kind, "grok", 2.5)


def test_map_xai_error_other_exceptions():
    assert map_xai_error(TimeoutError(), "xai").kind is ErrorKind.TIMEOUT
    assert map_xai_error(ValueError("no messages"), "xai").kind is ErrorKind.BAD_REQUEST
    assert map_xai_error(OSError("boom"), "xai").kind is ErrorKind.UNAVAILABLE
    same = ProviderError(ErrorKind.TIMEOUT, "t", provider="xai")
    assert map_xai_error(same, "xai") is same


async def test_bad_input_is_a_bad_request(fake_xai):
    _, error = await collect(chat_for(fake_xai, "grok-4"), [ChatMessage("narrator", "once upon a time")])
    assert error is not None
    assert error.kind is ErrorKind.BAD_REQUEST

    _, error = await collect(chat_for(fake_xai, "grok-4"), [])
    assert error is not None
    assert error.kind is ErrorKind.BAD_REQUEST
    assert fake_xai.requests == []


async def test_clients_are_shared_per_key_host_and_event_loop(fake_xai):
    client = xai_client(api_key=KEY, api_host=fake_xai.address, insecure=True)

    assert xai_client(api_key=KEY, api_host=fake_xai.address, insecure=True) is client
    assert xai_client(api_key=KEY + "x", api_host=fake_xai.address, insecure=True) is not client
    assert xai_client(api_key=KEY, api_host="127.0.0.1:1", insecure=True) is not client
    with pytest.raises(ValueError, match="key is required"):
        xai_client(api_key="")

    async def on_another_loop() -> xai_sdk.AsyncClient:
        other = xai_client(api_key=KEY, api_host=fake_xai.address, insecure=True)
        await close_xai_clients()
        return other

    results: list[xai_sdk.AsyncClient] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(on_another_loop())))
    thread.start()
    thread.join(10)
    assert results
    assert results[0] is not client


async def test_a_client_factory_is_resolved_at_each_turn(fake_xai):
    chat = XAIChat(lambda: xai_client(api_key=KEY, api_host=fake_xai.address, insecure=True), model="grok-4")

    events, error = await collect(chat, [ChatMessage("user", "hi")])

    assert error is None
    assert "".join(texts(events)) == "You said: hi."


async def test_the_fake_answers_chat_sample_too(fake_xai):
    client = xai_client(api_key=KEY, api_host=fake_xai.address, insecure=True)

    response = await client.chat.create(model="grok-4", messages=[xai_user("good morning")]).sample()

    assert response.content == "You said: good morning."
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (2, 4)
    assert fake_xai.requests[0].method == "GetCompletion"


async def test_the_fake_runs_as_a_subprocess():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.xai_server",
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("ready ")
        address = f"127.0.0.1:{int(line.split()[1])}"
        chat = XAIChat(xai_client(api_key=KEY, api_host=address, insecure=True), model="grok-4")

        events, error = await collect(chat, [ChatMessage("user", "over the wire")])

        assert error is None
        assert "".join(texts(events)) == "You said: over the wire."
    finally:
        await close_xai_clients()
        process.terminate()
        async with asyncio.timeout(10):
            await process.wait()
    assert process.returncode == 0
