"""xAI Grok chat over gRPC with the official ``xai-sdk`` (design notes §4).

How the SDK streams: ``client.chat.create(...)`` only builds a ``GetCompletionsRequest``; ``chat.stream()``
opens the server-streaming RPC ``xai_api.Chat/GetCompletionChunk`` and yields ``(response, chunk)`` pairs.
Each chunk holds ``outputs`` (one per choice, each with a ``delta`` that carries the role on *every*
chunk, unlike OpenAI, plus content and whole tool calls) and a ``usage`` that is the running total, so
the last chunk's usage (accumulated into ``response.usage``) is the turn's usage. ``chunk.content`` is
only this chunk's text of the assistant outputs, never the accumulated text.

Deliberate choices:

* One client (one gRPC channel) per key, host and event loop: ``grpc.aio`` channels are bound to the loop
  that created them and fail on another one (tests run each test on its own loop; a server has one).
  The channel is one HTTP/2 connection that every session's turns share, kept open between turns by the
  SDK's keepalive pings (every 30 s, also without calls): a turn pays no TCP or TLS handshake.
* No gRPC-level retries: the SDK's default channel options turn retries on (five attempts on
  UNAVAILABLE). The router decides about retries and must see the first failure at once.
* Every call has a 30 s deadline (the SDK default is 27 minutes). The router bounds the time to the
  first token separately.
* The SDK's tracing puts prompts and replies into span attributes unless told not to, and doing so it
  ``json.loads`` the tool-call arguments, which raises after the stream when a model produced invalid
  JSON. Visitor speech does not belong in traces, so that is switched off (an explicit setting wins).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import grpc
import xai_sdk
from xai_sdk import chat as xai_chat
from xai_sdk.proto import chat_pb2

from voice.providers.base import (
    ChatEvent,
    ChatMessage,
    ChatModel,
    ErrorKind,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

XAI = "xai"
DEFAULT_API_HOST = "api.x.ai"
CALL_TIMEOUT_S = 30.0

os.environ.setdefault("XAI_SDK_DISABLE_SENSITIVE_TELEMETRY_ATTRIBUTES", "1")

# Options given here replace the SDK's defaults of the same name.
_CHANNEL_OPTIONS: list[tuple[str, object]] = [
    ("grpc.enable_retries", 0),
    ("grpc.service_config", json.dumps({})),  # the SDK's default service config is a retry policy
]

_CLIENT_SIDE_TOOL_TYPES = frozenset({chat_pb2.TOOL_CALL_TYPE_INVALID, chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL})


@dataclass(slots=True)
class _LoopClients:
    loop: asyncio.AbstractEventLoop
    clients: dict[tuple[str, str, bool, float], tuple[xai_sdk.AsyncClient, str]] = field(default_factory=dict)


_clients_by_loop: dict[int, _LoopClients] = {}


def xai_client(
    *, api_key: str, api_host: str | None = None, insecure: bool = False, timeout_s: float = CALL_TIMEOUT_S
) -> xai_sdk.AsyncClient:
    """The shared client for this key and host on the running event loop (call it from a coroutine).

    ``insecure`` is a plaintext channel (a local fake or a sidecar); the key then travels as
    ``authorization: Bearer <key>`` metadata, as it does over TLS.
    """
    if not api_key:
        # The SDK would quietly fall back to the XAI_API_KEY environment variable: never for a tenant.
        raise ValueError("An xAI API key is required.")
    loop = asyncio.get_running_loop()
    for ident, entry in list(_clients_by_loop.items()):
        if entry.loop.is_closed():  # its channels died with it; nothing left to close
            _clients_by_loop.pop(ident, None)  # pop: another thread's loop may be purging too
    entry = _clients_by_loop.get(id(loop))
    if entry is None or entry.loop is not loop:
        entry = _clients_by_loop[id(loop)] = _LoopClients(loop)
    host = api_host or DEFAULT_API_HOST
    key = (hashlib.sha256(api_key.encode()).hexdigest(), host, insecure, timeout_s)
    cached = entry.clients.get(key)
    if cached is None:
        client = xai_sdk.AsyncClient(
            api_key=api_key,
            api_host=host,
            channel_options=list(_CHANNEL_OPTIONS),
            timeout=timeout_s,
            use_insecure_channel=insecure,
        )
        cached = entry.clients[key] = (client, api_key)
    return cached[0]


async def close_xai_clients() -> None:
    """Close the clients that belong to the running event loop (shutdown, tests)."""
    entry = _clients_by_loop.pop(id(asyncio.get_running_loop()), None)
    if entry is not None:
        for client, _ in entry.clients.values():
            await client.close()


class XAIChat(ChatModel):
    """Streams a Grok reply. ``client`` is a client or a function returning one (such as a
    ``functools.partial`` of :func:`xai_client`), called at each turn on the turn's event loop."""

    def __init__(
        self,
        client: xai_sdk.AsyncClient | Callable[[], xai_sdk.AsyncClient],
        *,
        model: str,
        provider: str = XAI,
        max_tokens: int | None = None,
    ) -> None:
        self._client = client
        self.model = model
        self.provider = provider
        self.max_tokens = max_tokens

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        request_messages = [_to_xai_message(message, self.provider) for message in messages]
        calls: dict[str, ToolCall] = {}
        last_response: xai_chat.Response | None = None
        pump: asyncio.Task[None] | None = None
        try:
            client = self._client if isinstance(self._client, xai_sdk.AsyncClient) else self._client()
            conversation = client.chat.create(
                model=self.model,
                messages=request_messages,
                tools=[xai_chat.tool(spec.name, spec.description, spec.parameters) for spec in tools] or None,
                max_tokens=self.max_tokens,
            )
            # The SDK's stream is read by a task of its own: cancelling that task is what cancels the RPC
            # (an abandoned SDK generator would keep it open until the garbage collector found it).
            pairs: asyncio.Queue[tuple[xai_chat.Response, xai_chat.Chunk] | None] = asyncio.Queue()
            pump = asyncio.create_task(_pump(conversation.stream(), pairs))
            pump.add_done_callback(_retrieve_exception)
            while (pair := await pairs.get()) is not None:
                last_response, chunk = pair
                # The role rides on every chunk: only the text counts, and a role-only chunk is no delta.
                text = chunk.content
                if text:
                    yield TextDelta(text)
                _collect_tool_calls(chunk.tool_calls, calls)
            await pump  # the stream's failure, if it failed
        except grpc.RpcError as exc:
            raise map_xai_error(exc, self.provider) from None  # the cause may quote credentials
        except ValueError as exc:  # the SDK's own request validation
            raise map_xai_error(exc, self.provider) from None
        finally:
            if pump is not None and not pump.done():
                pump.cancel()  # the consumer stopped early, was cancelled or timed out
        # Whole tool calls arrive in one chunk; they are handed on once the reply is complete, so a stream
        # cut after a call can still be retried before anything reached the visitor.
        for call in calls.values():
            yield call
        if last_response is None:  # a stream that ended without a single chunk
            yield Usage(input_tokens=0, output_tokens=0)
            return
        usage = last_response.usage  # each chunk carries the running total; the SDK keeps the last
        # xAI counts reasoning apart from completion tokens, and bills both at the output price.
        yield Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens + usage.reasoning_tokens)


async def _pump(
    chunks: AsyncIterator[tuple[xai_chat.Response, xai_chat.Chunk]],
    into: asyncio.Queue[tuple[xai_chat.Response, xai_chat.Chunk] | None],
) -> None:
    try:
        async for pair in chunks:
            into.put_nowait(pair)
    finally:
        into.put_nowait(None)


def _retrieve_exception(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved here; the stream re-raises it when it awaits the task


def _collect_tool_calls(tool_calls: Iterable[chat_pb2.ToolCall], into: dict[str, ToolCall]) -> None:
    for call in tool_calls:
        if call.type not in _CLIENT_SIDE_TOOL_TYPES:  # server-side tools (search...) run at xAI
            continue
        call_id = call.id or f"call_{len(into)}"
        into[call_id] = ToolCall(id=call_id, name=call.function.name, arguments=call.function.arguments)


def _to_xai_message(message: ChatMessage, provider: str) -> chat_pb2.Message:
    match message.role:
        case "system":
            return xai_chat.system(message.content)
        case "user":
            return xai_chat.user(message.content)
        case "assistant":
            converted = (
                xai_chat.assistant(message.content)
                if message.content
                else chat_pb2.Message(role=chat_pb2.MessageRole.ROLE_ASSISTANT)
            )
            converted.tool_calls.extend(
                chat_pb2.ToolCall(
                    id=call.id,
                    type=chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL,
                    function=chat_pb2.FunctionCall(name=call.name, arguments=call.arguments),
                )
                for call in message.tool_calls
            )
            return converted
        case "tool":
            return xai_chat.tool_result(message.content, tool_call_id=message.tool_call_id or None)
        case _:
            raise ProviderError(ErrorKind.BAD_REQUEST, f"Unknown message role {message.role!r}.", provider=provider)


_KIND_BY_STATUS: dict[grpc.StatusCode, ErrorKind] = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorKind.RATE_LIMITED,
    grpc.StatusCode.UNAVAILABLE: ErrorKind.UNAVAILABLE,
    grpc.StatusCode.INTERNAL: ErrorKind.UNAVAILABLE,
    grpc.StatusCode.UNKNOWN: ErrorKind.UNAVAILABLE,
    grpc.StatusCode.ABORTED: ErrorKind.UNAVAILABLE,
    grpc.StatusCode.CANCELLED: ErrorKind.UNAVAILABLE,  # cancelled by the server or a proxy, not by us
    grpc.StatusCode.DATA_LOSS: ErrorKind.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ErrorKind.TIMEOUT,
    grpc.StatusCode.INVALID_ARGUMENT: ErrorKind.BAD_REQUEST,
    grpc.StatusCode.NOT_FOUND: ErrorKind.BAD_REQUEST,
    grpc.StatusCode.UNAUTHENTICATED: ErrorKind.BAD_REQUEST,
    grpc.StatusCode.PERMISSION_DENIED: ErrorKind.BAD_REQUEST,
    grpc.StatusCode.FAILED_PRECONDITION: ErrorKind.BAD_REQUEST,
    grpc.StatusCode.OUT_OF_RANGE: ErrorKind.BAD_REQUEST,
    grpc.StatusCode.UNIMPLEMENTED: ErrorKind.BAD_REQUEST,
    grpc.StatusCode.ALREADY_EXISTS: ErrorKind.BAD_REQUEST,
}
_MAX_DETAIL_CHARS = 300
_KEY_PATTERNS = (re.compile(r"xai-[A-Za-z0-9_\-]{6,}"), re.compile(r"(?i)(bearer\s+)\S+"))


def map_xai_error(exc: BaseException, provider: str) -> ProviderError:
    """One of the router's error kinds for an SDK or gRPC failure. The message never holds an API key.

    xAI's protocol has no content-filter finish reason (only stop, length, context, tool calls and time
    limit), so nothing here maps to CONTENT_FILTERED.
    """
    if isinstance(exc, ProviderError):
        return exc
    code = _status_code(exc)
    if code is not None:
        details = _details(exc)
        message = f"xAI {code.name}" + (f": {details}" if details else "")
        kind = _KIND_BY_STATUS.get(code, ErrorKind.UNAVAILABLE)
        return ProviderError(kind, message, provider=provider, retry_after_s=_retry_after_s(exc))
    if isinstance(exc, TimeoutError):
        return ProviderError(ErrorKind.TIMEOUT, "xAI call timed out", provider=provider)
    kind = ErrorKind.BAD_REQUEST if isinstance(exc, ValueError | TypeError) else ErrorKind.UNAVAILABLE
    return ProviderError(kind, f"xAI {type(exc).__name__}: {_redacted(str(exc))}", provider=provider)


def _status_code(exc: BaseException) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    if not isinstance(exc, grpc.RpcError) or not callable(code):
        return None
    value = code()
    return value if isinstance(value, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details(exc: BaseException) -> str:
    # Only the server's details: the debug string of an AioRpcError adds transport internals.
    details = getattr(exc, "details", None)
    text = details() if callable(details) else None
    return _redacted(text or "")


def _redacted(text: str) -> str:
    for entry in _clients_by_loop.values():
        for _, api_key in entry.clients.values():
            text = text.replace(api_key, "[redacted]")
    text = _KEY_PATTERNS[0].sub("xai-[redacted]", text)
    text = _KEY_PATTERNS[1].sub(r"\1[redacted]", text)
    return text[:_MAX_DETAIL_CHARS]


def _retry_after_s(exc: BaseException) -> float | None:
    trailing = getattr(exc, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    for key, value in metadata or ():
        if key.lower() != "retry-after":
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        try:
            seconds = float(text.strip())
        except ValueError:
            return None  # an HTTP date: rare enough to leave to the circuit breaker
        return seconds if seconds >= 0 else None
    return None
