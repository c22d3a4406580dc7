"""A fake OpenAI HTTP API on a real socket, speaking the exact wire formats the ``openai`` SDK parses.

The SDK talks through ``httpx2``, which respx cannot intercept, so tests run the real SDK against this
server instead. It uses only the standard library and works two ways:

* in-process: ``with FakeOpenAIServer() as fake: ...`` starts it on a free loopback port in a background
  thread; ``fake.base_url`` is ``http://127.0.0.1:PORT/v1``, ``fake.requests`` the recorded requests and
  ``fake.connections`` the TCP connections accepted;
* as a process: ``python -m tests.fakes.openai_server --port N`` prints ``ready <port>`` once listening,
  ``GET /_fake/requests`` returns the recorded requests as JSON and ``POST /_fake/reset`` clears them.

Endpoints: ``POST /v1/chat/completions`` (streamed and not), ``POST /v1/audio/transcriptions`` (multipart;
SSE ``transcript.text.delta`` / ``transcript.text.done`` events with ``stream=true``), ``POST /v1/audio/speech``
(raw 24 kHz PCM, or WAV, streamed in chunks) and ``GET /v1/models``.

Behaviour is chosen by the request's ``model`` (so it works across processes), by prefix:

==================  ==================================================================================
``fake-429``        HTTP 429, ``retry-after: 7``, OpenAI's ``rate_limit_exceeded`` error body
``fake-500``        HTTP 500 with an OpenAI ``server_error`` body
``fake-cut``        a streamed reply that starts (role chunk and two content chunks; one transcript
                    delta; two PCM chunks), then the connection is closed without finishing
``fake-eof``        chat only: role chunk and two content chunks, then the body ends cleanly (proper
                    chunked terminator) but without a ``finish_reason`` or ``[DONE]``
``fake-nousage``    chat only: a normal reply that ignores ``stream_options.include_usage``
``fake-hang``       the request is accepted and nothing is ever sent (until the client goes away or 60 s)
``fake-slow-<ms>``  waits <ms> milliseconds before the first chunk (or the whole response), then normal
``fake-filter``     HTTP 400 with ``{"error": {"code": "content_filter", ...}}``
anything else       normal, deterministic replies (below)
==================  ==================================================================================

Normal chat replies: ``"You said: <last user message>."``, streamed word by word; after a tool result,
``"The tool said: <tool content>."``. If tools are offered and the last user message contains "weather",
the first tool is called with ``{"city": "Paris"}`` split over several argument deltas; if two or more
tools are offered and it contains "both", the first two tools are called in parallel (index 0 and 1).
Usage counts words: prompt tokens are the words of every message, completion tokens the words of the
reply (or the argument pieces of the tool calls).

Transcriptions answer with the form field ``prompt`` if given, else ``"hello from the fake transcriber"``;
the uploaded file must be a readable WAV. ``whisper-*`` models refuse ``stream=true``, as OpenAI does.
Speech is a 440 Hz tone of about 60 ms per input character (capped at 5 s) at 24 kHz.

An API key starting with ``sk-bad`` gets a 401 whose message echoes the key in full (worse than OpenAI,
which echoes part of it), so tests can check that no key leaks into error messages.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import io
import json
import math
import re
import secrets
import select
import signal
import socket
import sys
import threading
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self

SAMPLE_RATE = 24000
TONE_HZ = 440.0
MS_PER_CHARACTER = 60
MAX_SPEECH_S = 5.0
PCM_CHUNK_BYTES = 4096
HANG_LIMIT_S = 60.0
DEFAULT_TRANSCRIPT = "hello from the fake transcriber"
SYSTEM_FINGERPRINT = "fp_fake0001"
_ROLES = ("system", "developer", "user", "assistant", "tool")
_SLOW = re.compile(r"^fake-slow(?:-(\d+))?")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it. ``headers`` has lower-cased names; ``form`` holds multipart
    text fields as strings and file fields as ``{"filename", "content_type", "size", "wav"}``."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "headers": self.headers, "json": self.json, "form": self.form}

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")


@dataclass(frozen=True, slots=True)
class Scenario:
    kind: str  # "normal", "429", "500", "cut", "eof", "nousage", "hang" or "filter"
    delay_s: float = 0.0


def scenario_for(model: str) -> Scenario:
    for kind in ("429", "500", "cut", "eof", "nousage", "hang", "filter"):
        if model.startswith(f"fake-{kind}"):
            return Scenario(kind)
    slow = _SLOW.match(model)
    if slow:
        return Scenario("normal", delay_s=int(slow.group(1) or 1000) / 1000)
    return Scenario("normal")


def count_words(text: str) -> int:
    return len(text.split())


def _content_text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


@dataclass(slots=True)
class _ToolCallPlan:
    id: str
    name: str
    pieces: list[str]


@dataclass(slots=True)
class ChatPlan:
    text: str = ""
    tool_calls: list[_ToolCallPlan] = field(default_factory=list)

    @property
    def completion_tokens(self) -> int:
        if self.tool_calls:
            return sum(len(call.pieces) for call in self.tool_calls)
        return count_words(self.text)


def _argument_pieces(arguments: str) -> list[str]:
    """Split JSON text into at least three pieces, the way a model streams arguments."""
    step = max(1, math.ceil(len(arguments) / 4))
    return [arguments[i : i + step] for i in range(0, len(arguments), step)]


def plan_reply(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> ChatPlan:
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return ChatPlan(text=f"The tool said: {_content_text(last.get('content'))}.")
    last_user = next((_content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    names = [str(tool.get("function", {}).get("name", "")) for tool in tools if isinstance(tool, dict)]
    arguments = json.dumps({"city": "Paris"})
    lowered = last_user.lower()
    if len(names) >= 2 and "both" in lowered:
        calls = [
            _ToolCallPlan(f"call_{secrets.token_hex(12)}", name, _argument_pieces(arguments)) for name in names[:2]
        ]
        return ChatPlan(tool_calls=calls)
    if names and "weather" in lowered:
        return ChatPlan(
            tool_calls=[_ToolCallPlan(f"call_{secrets.token_hex(12)}", names[0], _argument_pieces(arguments))]
        )
    return ChatPlan(text=f"You said: {last_user.strip()}.")


def _words(text: str) -> list[str]:
    """Word pieces that concatenate back to ``text``: "You", " said:", " hello", ..."""
    return re.findall(r"\s*\S+", text) or [text]


def tone_pcm(text: str, speed: float = 1.0) -> bytes:
    """A 440 Hz tone, ~60 ms per character (capped at 5 s), 16-bit little-endian mono at 24 kHz."""
    seconds = min(MAX_SPEECH_S, MS_PER_CHARACTER * len(text) / 1000) / max(0.25, min(speed, 4.0))
    count = max(int(SAMPLE_RATE * seconds), SAMPLE_RATE // 10)
    fade = SAMPLE_RATE // 100
    samples = array.array("h", bytes(2 * count))
    for i in range(count):
        envelope = min(1.0, i / fade, (count - 1 - i) / fade)
        samples[i] = int(9000 * envelope * math.sin(2 * math.pi * TONE_HZ * i / SAMPLE_RATE))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class _ClientGoneError(Exception):
    """The client closed the connection while we were writing."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, token_delay_s: float, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.token_delay_s = token_delay_s
        self.verbose = verbose
        self.records: list[RecordedRequest] = []
        self.connections = 0  # TCP connections accepted
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.records.append(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | _ClientGoneError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # --- plumbing -----------------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _lower_headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:
            raise _ClientGoneError from exc

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_error(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        self._send_json(status, body, headers)

    def _start_stream(self, content_type: str) -> None:
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("content-type", content_type)
            self.send_header("transfer-encoding", "chunked")
            self.send_header("cache-control", "no-cache")
            self.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
            self.end_headers()
        except OSError as exc:
            raise _ClientGoneError from exc

    def _write_chunk(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        except OSError as exc:
            raise _ClientGoneError from exc

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError as exc:
            raise _ClientGoneError from exc

    def _sse(self, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self._write_chunk(f"data: {data}\n\n".encode())

    def _abort(self) -> None:
        """Close the connection abruptly, mid-response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self.server.stopping.wait(seconds)

    def _hang(self) -> None:
        """Send nothing; return when the client goes away, the server stops, or after 60 s."""
        self.close_connection = True
        deadline = time.monotonic() + HANG_LIMIT_S
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if not readable:
                continue
            try:
                if not self.connection.recv(1, socket.MSG_PEEK):
                    return
            except OSError:
                return
            time.sleep(0.05)  # the client sent more bytes; keep holding

    def _error_scenario(self, scenario: Scenario, model: str) -> bool:
        """Answer the error scenarios common to every endpoint; True if the request was answered."""
        if scenario.kind == "429":
            self._send_error(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, Requested 1. "
                "Please try again in 7s.",
                type_="rate_limit_exceeded",
                code="rate_limit_exceeded",
                param=None,
                headers={"retry-after": "7", "x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "0"},
            )
        elif scenario.kind == "500":
            self._send_error(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                "The server had an error while processing your request. Sorry about that!",
                type_="server_error",
            )
        elif scenario.kind == "filter":
            self._send_error(
                HTTPStatus.BAD_REQUEST,
                "The response was filtered due to the prompt triggering the content management policy.",
                code="content_filter",
                param="prompt",
            )
        elif scenario.kind == "hang":
            self._hang()
        else:
            return False
        return True

    def _authorized(self) -> bool:
        authorization = self.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            self._send_error(
                HTTPStatus.UNAUTHORIZED,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
            return False
        key = authorization[7:].strip()
        if key.startswith("sk-bad"):
            self._send_error(
                HTTPStatus.UNAUTHORIZED,
                f"Incorrect API key provided: {key}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
            return False
        return True

    # --- routing ------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        try:
            if self.path == "/_fake/requests":
                with self.server.lock:
                    records = [record.to_dict() for record in self.server.records]
                self._send_json(HTTPStatus.OK, records)
            elif self.path.rstrip("/") == "/v1/models":
                models = ["fake-chat", "gpt-4o-mini-transcribe", "whisper-1", "gpt-4o-mini-tts"]
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]
                self._send_json(HTTPStatus.OK, {"object": "list", "data": data})
            else:
                self._send_error(HTTPStatus.NOT_FOUND, f"Unknown request URL: GET {self.path}.", code="unknown_url")
        except _ClientGoneError:
            self.close_connection = True

    def do_POST(self) -> None:
        try:
            body = self._read_body()
            if self.path == "/_fake/reset":
                with self.server.lock:
                    self.server.records.clear()
                self._send_json(HTTPStatus.OK, {"ok": True})
                return
            routes = {
                "/v1/chat/completions": self._chat,
                "/v1/audio/transcriptions": self._transcriptions,
                "/v1/audio/speech": self._speech,
            }
            route = routes.get(self.path.split("?")[0])
            if route is None:
                self._record(body, None)
                self._send_error(HTTPStatus.NOT_FOUND, f"Unknown request URL: POST {self.path}.", code="unknown_url")
                return
            route(body)
        except _ClientGoneError:
            self.close_connection = True

    def _record(self, json_body: Any, form: dict[str, Any] | None) -> None:
        self.server.record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers=self._lower_headers(),
                json=json_body if isinstance(json_body, dict | list) else None,
                form=form,
            )
        )

    def _json_body(self, body: bytes) -> dict[str, Any] | None:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        self._record(payload, None)
        if not isinstance(payload, dict):
            self._send_error(HTTPStatus.BAD_REQUEST, "We could not parse the JSON body of your request.")
            return None
        return payload

    # --- chat completions ---------------------------------------------------------------------------

    def _chat(self, raw: bytes) -> None:
        body = self._json_body(raw)
        if body is None or not self._authorized():
            return
        model = body.get("model")
        messages = body.get("messages")
        if not isinstance(model, str) or not model:
            self._send_error(HTTPStatus.BAD_REQUEST, "you must provide a model parameter", param="model")
            return
        problem = _check_messages(messages)
        if problem:
            self._send_error(HTTPStatus.BAD_REQUEST, problem, param="messages")
            return
        tools = body.get("tools") or []
        scenario = scenario_for(model)
        if self._error_scenario(scenario, model):
            return
        plan = plan_reply(messages, tools)
        prompt_tokens = sum(count_words(_content_text(m.get("content"))) for m in messages)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            include_usage = include_usage and scenario.kind != "nousage"
            self._stream_chat(model, plan, prompt_tokens, include_usage, scenario)
        else:
            if scenario.kind == "cut":
                self._abort()
                return
            self._pause(scenario.delay_s)
            self._send_json(HTTPStatus.OK, _completion(model, plan, prompt_tokens))

    def _stream_chat(
        self, model: str, plan: ChatPlan, prompt_tokens: int, include_usage: bool, scenario: Scenario
    ) -> None:
        completion_id = f"chatcmpl-{secrets.token_urlsafe(21)}"
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                payload["usage"] = None
            payload["obfuscation"] = secrets.token_urlsafe(3)
            return payload

        self._start_stream("text/event-stream; charset=utf-8")
        self._pause(scenario.delay_s)
        delay = self.server.token_delay_s
        if plan.tool_calls:
            first = plan.tool_calls[0]
            header = {"index": 0, "id": first.id, "type": "function", "function": {"name": first.name, "arguments": ""}}
            self._sse(chunk({"role": "assistant", "content": None, "tool_calls": [header], "refusal": None}))
            for index, call in enumerate(plan.tool_calls):
                if index > 0:
                    header = {
                        "index": index,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                    self._sse(chunk({"tool_calls": [header]}))
                for piece in call.pieces:
                    self._pause(delay)
                    self._sse(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
            finish_reason = "tool_calls"
        else:
            self._sse(chunk({"role": "assistant", "content": "", "refusal": None}))
            for count, piece in enumerate(_words(plan.text)):
                if scenario.kind == "cut" and count == 2:
                    self._abort()
                    return
                if scenario.kind == "eof" and count == 2:
                    self._end_stream()  # a well-formed end of the body, without finish_reason or [DONE]
                    return
                self._pause(delay)
                self._sse(chunk({"content": piece}))
            finish_reason = "stop"
        self._sse(chunk({}, finish_reason))
        if include_usage:
            usage_chunk = chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _usage(prompt_tokens, plan.completion_tokens)
            self._sse(usage_chunk)
        self._sse("[DONE]")
        self._end_stream()

    # --- transcriptions -----------------------------------------------------------------------------

    def _transcriptions(self, raw: bytes) -> None:
        fields, files = _parse_multipart(self.headers.get("content-type", ""), raw)
        form: dict[str, Any] = dict(fields)
        for name, (filename, content_type, data) in files.items():
            form[name] = {"filename": filename, "content_type": content_type, "size": len(data), "wav": _wav_info(data)}
        self._record(None, form)
        if not self._authorized():
            return
        model = fields.get("model", "")
        if not model:
            self._send_error(HTTPStatus.BAD_REQUEST, "you must provide a model parameter", param="model")
            return
        if "file" not in files:
            self._send_error(HTTPStatus.BAD_REQUEST, "you must provide a file parameter", param="file")
            return
        wav_info = form["file"]["wav"]
        if wav_info is None:
            self._send_error(
                HTTPStatus.BAD_REQUEST,
                "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', "
                "'ogg', 'wav', 'webm']",
                param="file",
                code="invalid_value",
            )
            return
        stream = fields.get("stream", "").lower() == "true"
        if stream and model.startswith("whisper"):
            self._send_error(
                HTTPStatus.BAD_REQUEST, f"Streaming is not supported for the {model} model.", param="stream"
            )
            return
        scenario = scenario_for(model)
        if self._error_scenario(scenario, model):
            return
        text = fields.get("prompt") or DEFAULT_TRANSCRIPT
        usage = {
            "type": "tokens",
            "input_tokens": 10 + count_words(text),
            "output_tokens": count_words(text),
            "total_tokens": 10 + 2 * count_words(text),
            "input_token_details": {"text_tokens": 0, "audio_tokens": 10 + count_words(text)},
        }
        if stream:
            self._start_stream("text/event-stream; charset=utf-8")
            self._pause(scenario.delay_s)
            for count, piece in enumerate(_words(text)):
                if scenario.kind == "cut" and count == 1:
                    self._abort()
                    return
                self._pause(self.server.token_delay_s)
                self._sse({"type": "transcript.text.delta", "delta": piece, "logprobs": None})
            self._sse({"type": "transcript.text.done", "text": text, "logprobs": None, "usage": usage})
            self._end_stream()
            return
        if scenario.kind == "cut":
            self._abort()
            return
        self._pause(scenario.delay_s)
        response_format = fields.get("response_format", "json")
        if response_format == "text":
            self._send_bytes(HTTPStatus.OK, text.encode(), "text/plain; charset=utf-8")
        elif response_format == "verbose_json":
            duration = wav_info["frames"] / max(1, wav_info["rate"])
            payload = {"task": "transcribe", "language": "english", "duration": duration, "text": text, "segments": []}
            self._send_json(HTTPStatus.OK, payload)
        else:
            if model.startswith("whisper"):
                seconds = wav_info["frames"] / max(1, wav_info["rate"])
                self._send_json(HTTPStatus.OK, {"text": text, "usage": {"type": "duration", "seconds": seconds}})
            else:
                self._send_json(HTTPStatus.OK, {"text": text, "usage": usage})

    # --- speech -------------------------------------------------------------------------------------

    def _speech(self, raw: bytes) -> None:
        body = self._json_body(raw)
        if body is None or not self._authorized():
            return
        model = body.get("model")
        text = body.get("input")
        if not isinstance(model, str) or not model:
            self._send_error(HTTPStatus.BAD_REQUEST, "you must provide a model parameter", param="model")
            return
        if not isinstance(text, str) or not text:
            self._send_error(HTTPStatus.BAD_REQUEST, "[{'type': 'string_too_short', 'loc': ('body', 'input')}]")
            return
        if len(text) > 4096:
            self._send_error(HTTPStatus.BAD_REQUEST, "Input is longer than 4096 characters.", param="input")
            return
        if not body.get("voice"):
            self._send_error(HTTPStatus.BAD_REQUEST, "you must provide a voice parameter", param="voice")
            return
        response_format = body.get("response_format", "mp3")
        if response_format not in ("pcm", "wav"):
            self._send_error(
                HTTPStatus.BAD_REQUEST,
                f"The fake only produces 'pcm' and 'wav', not {response_format!r}.",
                param="response_format",
            )
            return
        scenario = scenario_for(model)
        if self._error_scenario(scenario, model):
            return
        speed = body.get("speed", 1.0)
        pcm = tone_pcm(text, float(speed) if isinstance(speed, int | float) else 1.0)
        if response_format == "wav":
            buffer = io.BytesIO()
            with wave.open(buffer, "wb") as writer:
                writer.setnchannels(1)
                writer.setsampwidth(2)
                writer.setframerate(SAMPLE_RATE)
                writer.writeframes(pcm)
            pcm = buffer.getvalue()
        self._start_stream("audio/wav" if response_format == "wav" else "audio/pcm")
        self._pause(scenario.delay_s)
        for count, offset in enumerate(range(0, len(pcm), PCM_CHUNK_BYTES)):
            if scenario.kind == "cut" and count == 2:
                self._abort()
                return
            if count:
                self._pause(self.server.token_delay_s)
            self._write_chunk(pcm[offset : offset + PCM_CHUNK_BYTES])
        self._end_stream()


def _check_messages(messages: Any) -> str | None:
    """The checks OpenAI makes on the message list, with its messages (typos included)."""
    if not isinstance(messages, list) or not messages:
        return "[] is too short - 'messages'"
    pending: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return f"Invalid value for 'messages[{index}].role'."
        role = message["role"]
        if pending and role != "tool":
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                "'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(sorted(pending))
            )
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    f"Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    f"with 'tool_calls'. (messages[{index}])"
                )
            pending.discard(call_id)
        elif role == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not call.get("id") or not function.get("name"):
                    return f"Missing required parameter: 'messages[{index}].tool_calls'."
                if not isinstance(function.get("arguments"), str):
                    return f"Invalid type for 'messages[{index}].tool_calls.function.arguments': expected a string."
                pending.add(call["id"])
            if message.get("content") is None and not message.get("tool_calls"):
                return f"Missing required parameter: 'messages[{index}].content'."
        elif "content" not in message:
            return f"Missing required parameter: 'messages[{index}].content'."
    return None


def _completion(model: str, plan: ChatPlan, prompt_tokens: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": plan.text or None, "refusal": None, "annotations": []}
    if plan.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": "".join(c.pieces)}}
            for c in plan.tool_calls
        ]
    return {
        "id": f"chatcmpl-{secrets.token_urlsafe(21)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if plan.tool_calls else "stop",
            }
        ],
        "usage": _usage(prompt_tokens, plan.completion_tokens),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    """Text fields and file fields (filename, content type, bytes) of a multipart/form-data body."""
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, str, bytes]] = {}
    if not content_type.lower().startswith("multipart/form-data"):
        return fields, files
    message = BytesParser(policy=HTTP).parsebytes(b"content-type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        return fields, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, part.get_content_type(), data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


def _wav_info(data: bytes) -> dict[str, int] | None:
    try:
        with wave.open(io.BytesIO(data)) as reader:
            return {
                "rate": reader.getframerate(),
                "channels": reader.getnchannels(),
                "sampwidth": reader.getsampwidth(),
                "frames": reader.getnframes(),
            }
    except (wave.Error, EOFError):
        return None


class FakeOpenAIServer:
    """The fake on a loopback port, served from a background thread. Use as a context manager."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, token_delay_s: float = 0.0, verbose: bool = False
    ) -> None:
        self._server = _Server((host, port), token_delay_s=token_delay_s, verbose=verbose)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._server.lock:
            return list(self._server.records)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path ends with ``path`` (e.g. "/chat/completions")."""
        return [request for request in self.requests if request.path.split("?")[0].endswith(path)]

    @property
    def connections(self) -> int:
        """TCP connections accepted since the start or the last reset (kept-alive ones count once)."""
        with self._server.lock:
            return self._server.connections

    def reset(self) -> None:
        with self._server.lock:
            self._server.records.clear()
            self._server.connections = 0

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()  # releases hanging and slow handlers
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake OpenAI API for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as 'ready <port>')")
    parser.add_argument("--token-delay-ms", type=float, default=0.0, help="pause between streamed pieces")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    options = parser.parse_args(argv)
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fake = FakeOpenAIServer(
        host=options.host, port=options.port, token_delay_s=options.token_delay_ms / 1000, verbose=options.verbose
    )
    with fake:
        print(f"ready {fake.port}", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
