"""The OpenAI providers through the real SDK against a fake OpenAI server on a real socket (no database)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx2
import openai
import pytest

from tests.fakes.openai_server import DEFAULT_TRANSCRIPT, FakeOpenAIServer
from voice.providers.base import (
    ChatMessage,
    ErrorKind,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolSpec,
    Transcript,
    Usage,
)
from voice.providers.openai_api import (
    OpenAIChat,
    OpenAISpeech,
    OpenAISpeechToText,
    map_openai_error,
    openai_client,
)

KEY = "sk-test-abc123def456"
ROOT = Path(__file__).resolve().parents[3]
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = ToolSpec(name="get_time", description="The time in a city.")


def chat(fake: FakeOpenAIServer, model: str = "gpt-4o-mini", key: str = KEY) -> OpenAIChat:
    return OpenAIChat(openai_client(api_key=key, base_url=fake.base_url), model=model)


async def collect(stream) -> list:
    return [event async for event in stream]


def text_of(events: list) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


async def expect_error(stream) -> tuple[list, ProviderError]:
    """The events yielded before the stream failed, and the failure."""
    events: list = []
    try:
        async for event in stream:
            events.append(event)
    except ProviderError as error:
        return events, error
    pytest.fail(f"no ProviderError; the stream ended after {events!r}")


def pcm(seconds: float, rate: int = 16000) -> bytes:
    return b"\x10\x00" * int(seconds * rate)


# --- chat ------------------------------------------------------------------------------------------------


async def test_streamed_reply_is_text_deltas_then_one_usage(fake):
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello there")]

    events = await collect(chat(fake).stream(messages))

    assert text_of(events) == "You said: hello there."
    assert sum(isinstance(event, TextDelta) for event in events) == 4  # word by word
    assert events[-1] == Usage(input_tokens=4, output_tokens=4)  # the fake's word counts
    assert sum(isinstance(event, Usage) for event in events) == 1
    (request,) = fake.requests_to("/chat/completions")
    assert request.json["model"] == "gpt-4o-mini"
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}
    assert request.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert "tools" not in request.json


async def test_tool_call_deltas_are_assembled_into_one_call(fake):
    events = await collect(chat(fake).stream([ChatMessage("user", "What's the weather?")], tools=[WEATHER]))

    calls = [event for event in events if isinstance(event, ToolCall)]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].id.startswith("call_")
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    assert text_of(events) == ""
    assert isinstance(events[-1], Usage)
    assert events[-1].output_tokens >= 3  # the arguments came in at least three pieces
    (request,) = fake.requests_to("/chat/completions")
    assert request.json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER.parameters,
            },
        }
    ]


async def test_parallel_tool_calls_are_assembled_by_index(fake):
    events = await collect(chat(fake).stream([ChatMessage("user", "Both, please")], tools=[WEATHER, TIME]))

    calls = [event for event in events if isinstance(event, ToolCall)]
    assert [call.name for call in calls] == ["get_weather", "get_time"]
    assert len({call.id for call in calls}) == 2
    assert all(json.loads(call.arguments) == {"city": "Paris"} for call in calls)
    assert isinstance(events[-1], Usage)


async def test_tool_result_round_trip_is_accepted(fake):
    call = ToolCall(id="call_abc", name="get_weather", arguments='{"city": "Paris"}')
    messages = [
        ChatMessage("user", "What's the weather?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "18 degrees and sunny", tool_call_id="call_abc"),
    ]

    events = await collect(chat(fake).stream(messages, tools=[WEATHER]))

    assert text_of(events) == "The tool said: 18 degrees and sunny."
    (request,) = fake.requests_to("/chat/completions")
    assert request.json["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": call.arguments}}
            ],
        },
        {"role": "tool", "content": "18 degrees and sunny", "tool_call_id": "call_abc"},
    ]


async def test_a_tool_message_without_its_call_is_a_bad_request(fake):
    messages = [ChatMessage("user", "hi"), ChatMessage("tool", "18 degrees", tool_call_id="call_missing")]

    _, error = await expect_error(chat(fake).stream(messages))

    assert error.kind is ErrorKind.BAD_REQUEST
    assert "400" in str(error)


async def test_rate_limit_is_rate_limited_with_retry_after(fake):
    _, error = await expect_error(chat(fake, "fake-429").stream([ChatMessage("user", "hi")]))

    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after_s == 7
    assert error.provider == "openai"
    assert "429" in str(error)
    assert len(fake.requests_to("/chat/completions")) == 1  # no SDK retries


async def test_server_error_is_unavailable(fake):
    _, error = await expect_error(chat(fake, "fake-500").stream([ChatMessage("user", "hi")]))

    assert error.kind is ErrorKind.UNAVAILABLE
    assert "500" in str(error)
    assert len(fake.requests_to("/chat/completions")) == 1


async def test_cut_stream_is_unavailable_after_the_text_before_the_cut(fake):
    events, error = await expect_error(chat(fake, "fake-cut").stream([ChatMessage("user", "hello there you")]))

    assert text_of(events) == "You said:"
    assert not any(isinstance(event, Usage) for event in events)
    assert error.kind is ErrorKind.UNAVAILABLE
    assert isinstance(error.__cause__, openai.APIConnectionError)


async def test_stream_ending_without_a_finish_reason_is_unavailable(fake):
    events, error = await expect_error(chat(fake, "fake-eof").stream([ChatMessage("user", "hello there you")]))

    assert text_of(events) == "You said:"
    assert error.kind is ErrorKind.UNAVAILABLE
    assert error.__cause__ is None  # the SDK saw a well-formed (if short) body; only we know it is cut


async def test_missing_usage_is_reported_as_zero(fake):
    events = await collect(chat(fake, "fake-nousage").stream([ChatMessage("user", "hi")]))

    assert text_of(events) == "You said: hi."
    assert events[-1] == Usage(input_tokens=0, output_tokens=0)


async def test_hanging_server_is_cancelled_promptly_and_the_client_stays_usable(fake):
    client = openai_client(api_key=KEY, base_url=fake.base_url)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await collect(OpenAIChat(client, model="fake-hang").stream([ChatMessage("user", "hi")]))
    assert time.monotonic() - started < 1.0

    assert openai_client(api_key=KEY, base_url=fake.base_url) is client
    events = await collect(OpenAIChat(client, model="gpt-4o-mini").stream([ChatMessage("user", "again")]))
    assert text_of(events) == "You said: again."


async def test_slow_first_token_arrives_after_the_delay(fake):
    started = time.monotonic()
    async for event in chat(fake, "fake-slow-200").stream([ChatMessage("user", "hi")]):
        assert isinstance(event, TextDelta)
        break
    assert time.monotonic() - started >= 0.2


async def test_content_filter_is_content_filtered(fake):
    _, error = await expect_error(chat(fake, "fake-filter").stream([ChatMessage("user", "hi")]))

    assert error.kind is ErrorKind.CONTENT_FILTERED


async def test_unreachable_server_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the call: nothing listens there
    client = openai_client(api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1")

    _, error = await expect_error(OpenAIChat(client, model="gpt-4o-mini").stream([ChatMessage("user", "hi")]))

    assert error.kind is ErrorKind.UNAVAILABLE


# --- keys and clients ------------------------------------------------------------------------------------


async def test_authorization_header_carries_exactly_the_given_key(fake):
    await collect(chat(fake, key="sk-tenant-one-1111").stream([ChatMessage("user", "hi")]))
    await collect(chat(fake, key="sk-tenant-two-2222").stream([ChatMessage("user", "hi")]))

    assert [request.authorization for request in fake.requests] == [
        "Bearer sk-tenant-one-1111",
        "Bearer sk-tenant-two-2222",
    ]


async def test_api_key_never_appears_in_provider_errors(fake):
    key = "sk-bad-0123456789abcdefSECRET"  # the fake echoes such a key whole in its 401 message
    client = openai_client(api_key=key, base_url=fake.base_url)
    streams = [
        OpenAIChat(client, model="gpt-4o-mini").stream([ChatMessage("user", "hi")]),
        OpenAISpeechToText(client, model="whisper-1").transcribe(pcm(0.5), 16000, language="en"),
        OpenAISpeech(client, model="gpt-4o-mini-tts").synthesize("Hi.", voice="alloy", speed=1),
    ]
    errors = [(await expect_error(stream))[1] for stream in streams]

    for error in errors:
        assert error.kind is ErrorKind.BAD_REQUEST
        assert "401" in str(error)
        assert "SECRET" not in str(error) and key not in str(error) and key not in repr(error.args)
    assert fake.requests[0].authorization == f"Bearer {key}"  # the key was sent, only never repeated


async def test_clients_are_shared_per_key_and_base_url_without_sdk_retries(fake):
    first = openai_client(api_key=KEY, base_url=fake.base_url)

    assert openai_client(api_key=KEY, base_url=fake.base_url + "/") is first
    assert openai_client(api_key="sk-other-key-0000", base_url=fake.base_url) is not first
    assert openai_client(api_key=KEY, base_url=None) is not first
    assert first.max_retries == 0
    assert first.timeout == httpx2.Timeout(connect=3.0, read=20.0, write=10.0, pool=3.0)
    assert str(openai_client(api_key=KEY, base_url=None).base_url).startswith("https://api.openai.com/v1")


def test_retry_after_is_read_from_seconds_milliseconds_or_a_date():
    def rate_limited(headers: dict[str, str]) -> openai.RateLimitError:
        request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")
        response = httpx2.Response(429, headers=headers, request=request)
        return openai.RateLimitError("Error code: 429", response=response, body=None)

    assert map_openai_error(rate_limited({"retry-after": "2.5"}), "openai").retry_after_s == 2.5
    assert map_openai_error(rate_limited({"retry-after-ms": "1500", "retry-after": "9"}), "openai").retry_after_s == 1.5
    in_30_s = email.utils.formatdate(time.time() + 30, usegmt=True)
    from_date = map_openai_error(rate_limited({"retry-after": in_30_s}), "openai").retry_after_s
    assert from_date is not None and math.isclose(from_date, 30, abs_tol=2)
    assert map_openai_error(rate_limited({}), "openai").retry_after_s is None


# --- speech to text --------------------------------------------------------------------------------------


async def test_streaming_transcription_yields_partials_then_one_final(fake):
    client = openai_client(api_key=KEY, base_url=fake.base_url)
    stt = OpenAISpeechToText(client, model="gpt-4o-mini-transcribe")

    transcripts = await collect(stt.transcribe(pcm(0.5), 16000, language="en-US"))

    assert [t.final for t in transcripts] == [False] * 5 + [True]
    assert [t.text for t in transcripts[:2]] == ["hello", "hello from"]
    assert transcripts[-1] == Transcript(text=DEFAULT_TRANSCRIPT, final=True)
    (request,) = fake.requests_to("/audio/transcriptions")
    assert request.form["model"] == "gpt-4o-mini-transcribe"
    assert request.form["language"] == "en"
    assert request.form["stream"] == "true"
    assert request.form["file"]["wav"] == {"rate": 16000, "channels": 1, "sampwidth": 2, "frames": 8000}
    assert request.authorization == f"Bearer {KEY}"


async def test_whisper_transcription_is_one_final_transcript(fake):
    stt = OpenAISpeechToText(openai_client(api_key=KEY, base_url=fake.base_url), model="whisper-1")

    transcripts = await collect(stt.transcribe(pcm(0.3, 24000), 24000, language="de"))

    assert transcripts == [Transcript(text=DEFAULT_TRANSCRIPT, final=True)]
    (request,) = fake.requests_to("/audio/transcriptions")
    assert "stream" not in request.form
    assert request.form["language"] == "de"
    assert request.form["file"]["wav"]["rate"] == 24000


async def test_transcription_failures_are_mapped(fake):
    client = openai_client(api_key=KEY, base_url=fake.base_url)

    transcripts, cut = await expect_error(
        OpenAISpeechToText(client, model="fake-cut", streaming=True).transcribe(pcm(0.2), 16000, language="en")
    )
    _, limited = await expect_error(
        OpenAISpeechToText(client, model="fake-429").transcribe(pcm(0.2), 16000, language="en")
    )

    assert transcripts == [Transcript(text="hello", final=False)]
    assert cut.kind is ErrorKind.UNAVAILABLE
    assert limited.kind is ErrorKind.RATE_LIMITED and limited.retry_after_s == 7


# --- text to speech --------------------------------------------------------------------------------------


async def test_speech_streams_even_length_pcm_at_24_khz(fake):
    tts = OpenAISpeech(openai_client(api_key=KEY, base_url=fake.base_url), model="gpt-4o-mini-tts")
    text = "Hello, this is a test."

    chunks = await collect(tts.synthesize(text, voice="nova", speed=1.0))

    total = sum(len(chunk) for chunk in chunks)
    assert tts.sample_rate == 24000
    assert total > 0 and total % 2 == 0
    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    assert len(chunks) > 1  # streamed, not one blob
    assert total == pytest.approx(24000 * 2 * 0.060 * len(text), rel=0.01)
    (request,) = fake.requests_to("/audio/speech")
    assert request.json == {
        "model": "gpt-4o-mini-tts",
        "input": text,
        "voice": "nova",
        "response_format": "pcm",
        "speed": 1.0,
    }


async def test_a_speaking_style_is_sent_as_instructions_to_models_that_take_them(fake):
    style = "Speak calmly and warmly, a little slower."
    for model in ("gpt-4o-mini-tts", "tts-1"):
        tts = OpenAISpeech(openai_client(api_key=KEY, base_url=fake.base_url), model=model)
        await collect(tts.synthesize("We are sorry about that.", voice="nova", speed=0.93, style=style))

    newer, older = fake.requests_to("/audio/speech")
    assert newer.json["instructions"] == style and newer.json["speed"] == 0.93
    assert "instructions" not in older.json  # tts-1 refuses instructions: only the speed follows


async def test_speech_failures_are_mapped(fake):
    client = openai_client(api_key=KEY, base_url=fake.base_url)

    _, failed = await expect_error(OpenAISpeech(client, model="fake-500").synthesize("Hi.", voice="alloy", speed=1))
    chunks, cut = await expect_error(
        OpenAISpeech(client, model="fake-cut").synthesize("A longer sentence to speak.", voice="alloy", speed=1)
    )

    assert failed.kind is ErrorKind.UNAVAILABLE
    assert cut.kind is ErrorKind.UNAVAILABLE
    assert sum(len(chunk) for chunk in chunks) % 2 == 0


# --- the fake as a process -------------------------------------------------------------------------------


def test_fake_runs_as_a_process_with_its_control_endpoints():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("ready ")
        root = f"http://127.0.0.1:{int(line.split()[1])}"
        body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
        request = urllib.request.Request(
            f"{root}/v1/chat/completions",
            data=body,
            headers={"content-type": "application/json", "authorization": "Bearer sk-proc-key-1"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["choices"][0]["message"]["content"] == "You said: hi."
        with urllib.request.urlopen(f"{root}/_fake/requests", timeout=5) as response:
            (recorded,) = json.load(response)
        assert recorded["headers"]["authorization"] == "Bearer sk-proc-key-1"
        assert recorded["json"]["model"] == "gpt-4o-mini"
        reset = urllib.request.Request(f"{root}/_fake/reset", data=b"", method="POST")
        urllib.request.urlopen(reset, timeout=5).close()
        with urllib.request.urlopen(f"{root}/_fake/requests", timeout=5) as response:
            assert json.load(response) == []
    finally:
        process.terminate()
        process.wait(5)
        process.stdout.close()
