"""OpenAI and OpenAI-compatible providers (vLLM, Ollama, self-hosted speech servers) through the ``openai`` SDK.

Every SDK failure leaves a public method as a :class:`ProviderError` (see :func:`map_openai_error`), raised
``from`` the SDK exception. The SDK never retries (``max_retries=0``): the router fails over to another
provider, and a retry hidden inside a live call would only spend the visitor's time.

Notes on how the SDK (3.x, over ``httpx2``) behaves, which shaped this module:

* a streamed reply whose connection drops before ``[DONE]`` surfaces as ``APIConnectionError`` when the
  chunked body is cut, but a body without framing may simply end: so :class:`OpenAIChat` checks that a
  ``finish_reason`` was seen before it calls a reply complete;
* an ``error`` object inside an SSE stream surfaces as a bare ``APIError`` (no status code);
* ``with_streaming_response`` bodies are read by ``httpx2`` directly, so a cut there raises ``httpx2``'s own
  exceptions, not the SDK's; they are mapped too.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import io
import logging
import math
import re
import threading
import time
import wave
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import openai
from openai import AsyncOpenAI

from core import netguard
from voice.providers.base import (
    ChatEvent,
    ChatMessage,
    ChatModel,
    ErrorKind,
    ProviderError,
    SpeechToText,
    TextDelta,
    TextToSpeech,
    ToolCall,
    ToolSpec,
    Transcript,
    Usage,
)

log = logging.getLogger(__name__)

OPENAI = "openai"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# The router bounds the time to the first token separately; these only stop a dead connection from
# holding a session forever.
CLIENT_TIMEOUT = openai.Timeout(connect=3.0, read=20.0, write=10.0, pool=3.0)
# OpenAI-compatible servers without authentication still need a non-empty key for the SDK.
NO_KEY = "no-key"
TTS_SAMPLE_RATE = 24000
TTS_CHUNK_BYTES = 4800  # 100 ms of 24 kHz 16-bit mono
_CLIENTS_PER_LOOP = 32
# The SDK's own connection limit; every idle connection is kept for KEEPALIVE_EXPIRY_S (the SDK's default is
# 5 s, shorter than the gap between two turns, so most turns paid a new TCP and TLS handshake).
_CONNECTION_LIMITS = httpx2.Limits(
    max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=netguard.KEEPALIVE_EXPIRY_S
)
_MAX_MESSAGE_CHARS = 300

# Failures of the SDK and of the HTTP stack under it (bodies read through ``with_streaming_response``
# raise httpx2's exceptions; TLS failures can surface as OSError or anyio.EndOfStream).
SDK_ERRORS: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    httpx2.HTTPError,
    httpx2.StreamError,
    anyio.EndOfStream,
    OSError,
    netguard.UnsafeURLError,  # the outbound guard refused the address or a redirect (not wrapped by the SDK)
)

# --- clients -----------------------------------------------------------------------------------------

_ClientKey = tuple[str, str, object]  # (SHA-256 of the API key, base URL, policy): no key kept in a dict key
_clients_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict[_ClientKey, AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)
_clients_outside_loops: OrderedDict[_ClientKey, AsyncOpenAI] = OrderedDict()
_clients_lock = threading.Lock()
# One connection pool per event loop and outbound policy, under every key's and base URL's client: a key
# is a header, not a connection, so a tenant's first turn reuses the connection another tenant warmed,
# and a client dropped from the cache above leaves its connections to the next one.
_http_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[object, httpx2.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)
_http_outside_loops: dict[object, httpx2.AsyncClient] = {}


def _shared_http(loop: asyncio.AbstractEventLoop | None, policy: netguard.PolicySource) -> httpx2.AsyncClient:
    """The pooled outbound HTTP client of this loop for this policy (call with ``_clients_lock`` held)."""
    if loop is None:
        pools = _http_outside_loops
    else:
        pools = _http_by_loop.get(loop)
        if pools is None:
            pools = _http_by_loop[loop] = {}
    http = pools.get(policy)
    if http is None:
        http = pools[policy] = netguard.async_client(policy, timeout=CLIENT_TIMEOUT, limits=_CONNECTION_LIMITS)
    return http


def openai_client(
    *, api_key: str, base_url: str | None, policy: netguard.PolicySource = netguard.TRUSTED
) -> AsyncOpenAI:
    """A shared client for this key and base URL (``None``: OpenAI's own API).

    Its HTTP client is the platform's outbound client (:mod:`core.netguard`): it never follows a
    redirect, and with a tenant's base URL (``policy=netguard.provider_policy``) every connection goes
    to an address the policy allows at that moment, whatever was allowed when the URL was saved. The
    operator's own URLs (OpenAI, ``OPENAI_BASE_URL``) are trusted by default.

    Clients are cached per process, up to 32 per event loop, least recently used first out. The cache is
    also keyed by the running event loop, because a client's pooled connections belong to the loop that
    opened them; called outside a running loop, it returns a client shared by such callers. All clients
    of a loop and policy share one connection pool, whose idle connections are kept for
    ``netguard.KEEPALIVE_EXPIRY_S``: a turn reuses the connection of the turn before. Timeouts:
    connect 3 s, read 20 s, write 10 s, pool 3 s; no SDK retries. An empty key (a keyless
    OpenAI-compatible server) is sent as ``no-key``.
    """
    url = (base_url or OPENAI_BASE_URL).rstrip("/")
    key = (hashlib.sha256(api_key.encode()).hexdigest(), url, policy)
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    with _clients_lock:
        if loop is None:
            cache = _clients_outside_loops
        else:
            cache = _clients_by_loop.get(loop)
            if cache is None:
                cache = _clients_by_loop[loop] = OrderedDict()
        client = cache.get(key)
        if client is not None:
            cache.move_to_end(key)
            return client
        client = AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=url,
            timeout=CLIENT_TIMEOUT,
            max_retries=0,
            http_client=_shared_http(loop, policy),
        )
        cache[key] = client
        while len(cache) > _CLIENTS_PER_LOOP:
            cache.popitem(last=False)  # dropped, not closed: a session may still be using it
        return client


# --- errors ------------------------------------------------------------------------------------------

_SECRET_PATTERN = re.compile(r"(?i)\b(?:sk|xai)-[A-Za-z0-9_*\-]{4,}|\bbearer\s+[^\s,;'\"]+")
_CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _SECRET_PATTERN.sub("[redacted]", text)
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 1] + "…"
    return text


def _retry_after_s(headers: httpx2.Headers | None) -> float | None:
    """``retry-after-ms``, else ``retry-after`` as seconds or as an HTTP date."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return None


def _is_content_filter(exc: BaseException) -> bool:
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return True
    if not isinstance(exc, openai.APIError):
        return False
    if exc.code in _CONTENT_FILTER_CODES:
        return True
    body = exc.body
    return isinstance(body, dict) and body.get("finish_reason") == "content_filter"


def map_openai_error(exc: BaseException, provider: str, *, secrets: Sequence[str] = ()) -> ProviderError:
    """The :class:`ProviderError` for an SDK (or HTTP stack) failure.

    429 → RATE_LIMITED (with ``retry_after_s``); timeouts → TIMEOUT; connection failures, 5xx, cut or
    malformed streams → UNAVAILABLE; other 4xx (400, 401, 403, 404, 422, ...) → BAD_REQUEST, with the
    status in the message; a content-filter refusal → CONTENT_FILTERED. Anything that looks like an API
    key (``sk-…``, ``Bearer …``, and each of ``secrets``) is removed from the message.
    """
    if isinstance(exc, ProviderError):
        return exc

    def error(kind: ErrorKind, text: str, retry_after_s: float | None = None) -> ProviderError:
        message = _redact(f"{provider}: {text}", secrets)
        return ProviderError(kind, message, provider=provider, retry_after_s=retry_after_s)

    detail = str(getattr(exc, "message", "") or exc) or type(exc).__name__
    detail = re.sub(r"^Error code: \d+ - ", "", detail)  # the SDK's prefix; the status is added below
    if _is_content_filter(exc):
        status = getattr(exc, "status_code", None)
        prefix = f"HTTP {status} " if status else ""
        return error(ErrorKind.CONTENT_FILTERED, f"{prefix}refused by the content filter: {detail}")
    if isinstance(exc, openai.RateLimitError):
        retry_after = _retry_after_s(exc.response.headers)
        return error(ErrorKind.RATE_LIMITED, f"HTTP 429 rate limited: {detail}", retry_after)
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException | TimeoutError):
        return error(ErrorKind.TIMEOUT, f"timed out ({type(exc).__name__})")
    if (refused := netguard.refusal(exc)) is not None:  # the base URL's address or a redirect, refused
        return error(ErrorKind.BAD_REQUEST, f"not called: {refused}")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        reason = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        return error(ErrorKind.UNAVAILABLE, f"connection failed{reason}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 408:
            return error(ErrorKind.TIMEOUT, f"HTTP 408: {detail}")
        if status == 409 or status >= 500:
            return error(ErrorKind.UNAVAILABLE, f"HTTP {status}: {detail}")
        return error(ErrorKind.BAD_REQUEST, f"HTTP {status}: {detail}")
    if isinstance(exc, openai.APIResponseValidationError):
        return error(ErrorKind.UNAVAILABLE, f"HTTP {exc.status_code}: malformed response: {detail}")
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return error(ErrorKind.UNAVAILABLE, f"error in the stream: {detail}")
    if isinstance(exc, httpx2.HTTPError | httpx2.StreamError | anyio.EndOfStream | OSError):
        return error(ErrorKind.UNAVAILABLE, f"connection failed: {type(exc).__name__}: {detail}")
    if isinstance(exc, openai.OpenAIError):  # raised before any request: missing credentials, bad arguments
        return error(ErrorKind.BAD_REQUEST, f"{type(exc).__name__}: {detail}")
    return error(ErrorKind.UNAVAILABLE, f"{type(exc).__name__}: {detail}")


class _OpenAIProvider:
    provider: str
    model: str
    client: AsyncOpenAI

    def _error(self, exc: BaseException) -> ProviderError:
        mapped = map_openai_error(exc, self.provider, secrets=(self.client.api_key,))
        log.info("%s %s failed: %s (%s)", self.provider, self.model, mapped.kind, type(exc).__name__)
        return mapped


# --- chat --------------------------------------------------------------------------------------------


def _message_param(message: ChatMessage) -> dict[str, Any]:
    if message.role in ("system", "user"):
        return {"role": message.role, "content": message.content}
    if message.role == "tool":
        return {"role": "tool", "content": message.content, "tool_call_id": message.tool_call_id}
    if message.role == "assistant":
        param: dict[str, Any] = {"role": "assistant", "content": message.content}
        if message.tool_calls:
            param["content"] = message.content or None
            param["tool_calls"] = [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in message.tool_calls
            ]
        return param
    raise ValueError(f"unknown chat message role {message.role!r}")


def _tool_param(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


@dataclass(slots=True)
class _PendingToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAIChat(_OpenAIProvider, ChatModel):
    """Chat Completions, streamed, with tools.

    Yields :class:`TextDelta` as content arrives; tool calls are assembled from their deltas (by
    ``index``: id and name come first, the arguments in pieces) and each is yielded whole once the
    ``finish_reason`` arrives (or when the stream ends, for servers that end tool calls with "stop").
    Then exactly one :class:`Usage`, from the final usage chunk (``include_usage``); a server that sends
    none (some OpenAI-compatible ones) yields ``Usage(0, 0)``: unknown, not free.

    A stream that ends without a ``finish_reason`` was cut: ProviderError(UNAVAILABLE). A reply stopped
    by the content filter (``finish_reason == "content_filter"``) raises CONTENT_FILTERED.
    """

    def __init__(self, client: AsyncOpenAI, *, model: str, provider: str = OPENAI) -> None:
        self.client = client
        self.model = model
        self.provider = provider

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        try:
            params = [_message_param(message) for message in messages]
        except ValueError as exc:
            raise ProviderError(ErrorKind.BAD_REQUEST, f"{self.provider}: {exc}", provider=self.provider) from exc
        extra: dict[str, Any] = {"tools": [_tool_param(tool) for tool in tools]} if tools else {}
        try:
            chunks = await self.client.chat.completions.create(
                model=self.model,
                messages=params,  # type: ignore[arg-type]  # plain dicts in the SDK's TypedDict shapes
                stream=True,
                stream_options={"include_usage": True},
                **extra,
            )
        except SDK_ERRORS as exc:
            raise self._error(exc) from exc

        pending: dict[int, _PendingToolCall] = {}
        finish_reason: str | None = None
        usage: Usage | None = None
        try:
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = Usage(input_tokens=chunk.usage.prompt_tokens, output_tokens=chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    delta = choice.delta
                    if delta.content:
                        yield TextDelta(delta.content)
                    for call_delta in delta.tool_calls or ():
                        call = pending.setdefault(call_delta.index, _PendingToolCall())
                        if call_delta.id and not call.id:
                            call.id = call_delta.id
                        function = call_delta.function
                        if function is not None:
                            if function.name and not call.name:
                                call.name = function.name
                            if function.arguments:
                                call.arguments.append(function.arguments)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                        if finish_reason == "content_filter":
                            raise ProviderError(
                                ErrorKind.CONTENT_FILTERED,
                                f"{self.provider}: the reply was stopped by the content filter",
                                provider=self.provider,
                            )
                        for tool_call in self._complete_tool_calls(pending):
                            yield tool_call
                        pending.clear()
        except SDK_ERRORS as exc:
            raise self._error(exc) from exc
        finally:
            await chunks.close()
        if finish_reason is None:
            raise ProviderError(
                ErrorKind.UNAVAILABLE,
                f"{self.provider}: the reply stream ended before it finished (connection cut?)",
                provider=self.provider,
            )
        for tool_call in self._complete_tool_calls(pending):
            yield tool_call
        yield usage if usage is not None else Usage(input_tokens=0, output_tokens=0)

    def _complete_tool_calls(self, pending: dict[int, _PendingToolCall]) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for index in sorted(pending):
            call = pending[index]
            if not call.name:
                raise ProviderError(
                    ErrorKind.UNAVAILABLE,
                    f"{self.provider}: tool call {index} arrived without a function name",
                    provider=self.provider,
                )
            calls.append(ToolCall(id=call.id or f"call_{index}", name=call.name, arguments="".join(call.arguments)))
        return calls


# --- speech to text ----------------------------------------------------------------------------------


def pcm_to_wav(pcm: bytes, sample_rate: int) -> bytes:
    """16-bit little-endian mono PCM wrapped as a WAV file, in memory."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm[: len(pcm) - len(pcm) % 2])
    return buffer.getvalue()


def language_code(language: str) -> str | None:
    """The ISO 639-1 part of a language tag ("en-US" → "en"), or None when there is none to send."""
    code = re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower()
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None


class OpenAISpeechToText(_OpenAIProvider, SpeechToText):
    """Transcriptions. Models whose names start with "gpt-4o" stream: a partial :class:`Transcript` (the
    text so far) per delta, then the final one. Others (``whisper-1``, most self-hosted servers) give
    one final transcript. ``streaming`` overrides the guess from the model name."""

    def __init__(
        self, client: AsyncOpenAI, *, model: str, provider: str = OPENAI, streaming: bool | None = None
    ) -> None:
        self.client = client
        self.model = model
        self.provider = provider
        self.streaming = model.startswith("gpt-4o") if streaming is None else streaming

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        if len(pcm) < 2:
            yield Transcript(text="", final=True)
            return
        file = ("speech.wav", pcm_to_wav(pcm, sample_rate), "audio/wav")
        extra: dict[str, Any] = {}
        code = language_code(language)
        if code:
            extra["language"] = code
        if not self.streaming:
            try:
                result = await self.client.audio.transcriptions.create(
                    file=file, model=self.model, response_format="json", **extra
                )
            except SDK_ERRORS as exc:
                raise self._error(exc) from exc
            yield Transcript(text=result.text.strip(), final=True)
            return

        try:
            events = await self.client.audio.transcriptions.create(file=file, model=self.model, stream=True, **extra)
        except SDK_ERRORS as exc:
            raise self._error(exc) from exc
        text = ""
        final: str | None = None
        try:
            async for event in events:
                if event.type == "transcript.text.delta":
                    text += event.delta
                    yield Transcript(text=text.lstrip(), final=False)
                elif event.type == "transcript.text.done":
                    final = event.text
        except SDK_ERRORS as exc:
            raise self._error(exc) from exc
        finally:
            await events.close()
        if final is None:
            raise ProviderError(
                ErrorKind.UNAVAILABLE,
                f"{self.provider}: the transcript stream ended before it finished (connection cut?)",
                provider=self.provider,
            )
        yield Transcript(text=final.strip(), final=True)


# --- text to speech ----------------------------------------------------------------------------------


class OpenAISpeech(_OpenAIProvider, TextToSpeech):
    """Speech as raw 24 kHz 16-bit mono PCM (``response_format="pcm"``), yielded as it arrives in chunks
    of about 100 ms (every chunk an even number of bytes)."""

    sample_rate = TTS_SAMPLE_RATE
    DEFAULT_VOICE = "alloy"

    def __init__(self, client: AsyncOpenAI, *, model: str, provider: str = OPENAI) -> None:
        self.client = client
        self.model = model
        self.provider = provider

    async def synthesize(self, text: str, *, voice: str, speed: float, style: str = "") -> AsyncIterator[bytes]:
        if not text.strip():
            return
        carry = b""
        # Instructions (tone of voice) are for gpt-4o-mini-tts and later; tts-1 and tts-1-hd refuse them.
        extra = {"instructions": style} if style and not self.model.startswith("tts-1") else {}
        try:
            async with self.client.audio.speech.with_streaming_response.create(
                model=self.model,
                input=text,
                voice=voice or self.DEFAULT_VOICE,
                response_format="pcm",
                speed=min(4.0, max(0.25, speed)),
                **extra,
            ) as response:
                async for data in response.iter_bytes(TTS_CHUNK_BYTES):
                    data = carry + data
                    cut = len(data) - len(data) % 2
                    carry = data[cut:]
                    if cut:
                        yield data[:cut]
        except SDK_ERRORS as exc:
            raise self._error(exc) from exc
