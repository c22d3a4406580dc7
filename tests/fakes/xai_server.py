"""A fake xAI chat service: a ``grpc.aio`` server built on the SDK's own generated servicer, so the real
``xai-sdk`` client talks to it exactly as it talks to api.x.ai (connect with ``use_insecure_channel``).

The requested model name picks the behaviour:

* any other name: ``"You said: <last user message>."`` streamed word by word. With tools offered and
  "weather" in the last user message, a call of the first tool with ``{"city": "Paris"}`` instead; after
  a tool result, ``"The tool said: <tool content>."``. Every chunk carries the assistant role, as xAI's
  do, and a running usage total; the last chunk has the finish reason. Prompt tokens are the words of
  all messages, completion tokens the words of the reply (or of the tool call's arguments).
* ``fake-429``: RESOURCE_EXHAUSTED with trailing metadata ``retry-after: 7``.
* ``fake-500``: INTERNAL. ``fake-unavailable``: UNAVAILABLE.
* ``fake-cut``: two content chunks, then UNAVAILABLE.
* ``fake-hang``: nothing at all until the client gives up (at most 60 s).
* ``fake-slow-<ms>``: waits <ms> milliseconds before the first chunk, then as normal.
* ``fake-bad-tool-args``: a tool call whose arguments are not valid JSON.
* ``fake-reasoning``: first a reasoning chunk (``reasoning_content``, 3 reasoning tokens), then as normal.
* ``fake-badkey``, or ``authorization`` metadata that is not ``Bearer <token>``: UNAUTHENTICATED. The
  details quote the token whole (xAI masks it) so that tests prove the client never repeats it.

In-process: ``async with FakeXAIServer() as server:`` then ``server.address`` ("127.0.0.1:PORT") and
``server.requests``. As a process: ``python -m tests.fakes.xai_server --port N`` prints ``ready <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

import grpc
from google.protobuf import timestamp_pb2
from xai_sdk.proto import chat_pb2, chat_pb2_grpc, sample_pb2, usage_pb2

HANG_CAP_S = 60.0
REASONING = "Let me think about that."
REASONING_TOKENS = 3
ROLE_ASSISTANT = chat_pb2.MessageRole.ROLE_ASSISTANT
_SLOW = re.compile(r"^fake-slow-(\d+)")
_BEARER = re.compile(r"^Bearer \S+$")


@dataclass(frozen=True, slots=True)
class RecordedToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    role: str  # "system", "user", "assistant", "tool"
    content: str
    tool_call_id: str = ""
    tool_calls: tuple[RecordedToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordedTool:
    name: str
    description: str
    parameters: dict[str, object]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str  # "GetCompletionChunk" (chat.stream) or "GetCompletion" (chat.sample)
    model: str
    messages: tuple[RecordedMessage, ...]
    tools: tuple[RecordedTool, ...]
    authorization: str | None
    max_tokens: int | None
    peer: str = ""  # the client's address and port ("ipv4:127.0.0.1:54321"): one per TCP connection


@dataclass(frozen=True, slots=True)
class _Reply:
    text: str = ""
    tool_call: chat_pb2.ToolCall | None = None
    prompt_tokens: int = 0

    @property
    def pieces(self) -> list[str]:
        words = self.text.split(" ") if self.text else []
        return [word if index == 0 else " " + word for index, word in enumerate(words)]

    @property
    def completion_tokens(self) -> int:
        if self.tool_call is not None:
            return len(self.tool_call.function.arguments.split())
        return len(self.text.split())

    @property
    def finish_reason(self) -> int:
        return sample_pb2.REASON_TOOL_CALLS if self.tool_call is not None else sample_pb2.REASON_STOP


def _record(method: str, request: chat_pb2.GetCompletionsRequest, context: grpc.aio.ServicerContext) -> RecordedRequest:
    authorization = next(
        (str(value) for key, value in context.invocation_metadata() or () if key.lower() == "authorization"), None
    )
    messages = tuple(
        RecordedMessage(
            role=chat_pb2.MessageRole.Name(message.role).removeprefix("ROLE_").lower(),
            content="".join(part.text for part in message.content),
            tool_call_id=message.tool_call_id,
            tool_calls=tuple(
                RecordedToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
                for call in message.tool_calls
            ),
        )
        for message in request.messages
    )
    tools = tuple(
        RecordedTool(
            name=tool.function.name,
            description=tool.function.description,
            parameters=json.loads(tool.function.parameters or "{}"),
        )
        for tool in request.tools
        if tool.WhichOneof("tool") == "function"
    )
    return RecordedRequest(
        method=method,
        model=request.model,
        messages=messages,
        tools=tools,
        authorization=authorization,
        max_tokens=request.max_tokens if request.HasField("max_tokens") else None,
        peer=context.peer(),
    )


class FakeChatServicer(chat_pb2_grpc.ChatServicer):
    def __init__(self, *, word_delay_s: float = 0.0) -> None:
        self.word_delay_s = word_delay_s
        self.requests: list[RecordedRequest] = []
        self.cancellations = 0  # RPCs the client cancelled while the fake was still working on them

    async def GetCompletionChunk(  # noqa: N802 (the generated servicer's name)
        self, request: chat_pb2.GetCompletionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.GetChatCompletionChunk]:
        record = _record("GetCompletionChunk", request, context)
        self.requests.append(record)
        try:
            await self._fail_or_wait(record, context)
            reply = self._reply(record)
            if record.model.startswith("fake-reasoning"):
                delta = chat_pb2.Delta(role=ROLE_ASSISTANT, reasoning_content=REASONING)
                yield self._chunk(record, reply, delta=delta, done=0)
            for done, piece in enumerate(reply.pieces, start=1):
                if record.model.startswith("fake-cut") and done == 3:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "fake-cut: connection lost mid-stream")
                if done > 1 and self.word_delay_s:
                    await asyncio.sleep(self.word_delay_s)
                # Usage is a running total on every chunk, as xAI sends it: the last one is the turn's.
                delta = chat_pb2.Delta(role=ROLE_ASSISTANT, content=piece)
                yield self._chunk(record, reply, delta=delta, done=done)
            if reply.tool_call is not None:
                delta = chat_pb2.Delta(role=ROLE_ASSISTANT, tool_calls=[reply.tool_call])
                yield self._chunk(record, reply, delta=delta, done=reply.completion_tokens)
            # The last chunk: the role again, no content, the finish reason and the final usage.
            yield self._chunk(
                record,
                reply,
                delta=chat_pb2.Delta(role=ROLE_ASSISTANT),
                done=reply.completion_tokens,
                finish_reason=reply.finish_reason,
            )
        except asyncio.CancelledError:
            self.cancellations += 1
            raise

    async def GetCompletion(  # noqa: N802 (the generated servicer's name)
        self, request: chat_pb2.GetCompletionsRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.GetChatCompletionResponse:
        record = _record("GetCompletion", request, context)
        self.requests.append(record)
        try:
            await self._fail_or_wait(record, context)
            if record.model.startswith("fake-cut"):
                await context.abort(grpc.StatusCode.UNAVAILABLE, "fake-cut: connection lost")
        except asyncio.CancelledError:
            self.cancellations += 1
            raise
        reply = self._reply(record)
        message = chat_pb2.CompletionMessage(role=ROLE_ASSISTANT, content=reply.text)
        if reply.tool_call is not None:
            message.tool_calls.append(reply.tool_call)
        return chat_pb2.GetChatCompletionResponse(
            id=f"fake-{len(self.requests)}",
            model=record.model,
            created=_now(),
            system_fingerprint="fake",
            outputs=[chat_pb2.CompletionOutput(index=0, finish_reason=reply.finish_reason, message=message)],
            usage=self._usage(record, reply, reply.completion_tokens),
        )

    async def _fail_or_wait(self, record: RecordedRequest, context: grpc.aio.ServicerContext) -> None:
        model = record.model
        if model.startswith("fake-badkey") or not _BEARER.match(record.authorization or ""):
            token = (record.authorization or "").removeprefix("Bearer ")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"Incorrect API key provided: {token}")
        if model.startswith("fake-429"):
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "fake-429: too many requests",
                trailing_metadata=(("retry-after", "7"),),
            )
        if model.startswith("fake-500"):
            await context.abort(grpc.StatusCode.INTERNAL, "fake-500: internal error")
        if model.startswith("fake-unavailable"):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake-unavailable: service unavailable")
        if model.startswith("fake-hang"):
            await asyncio.sleep(HANG_CAP_S)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake-hang: nobody gave up in time")
        slow = _SLOW.match(model)
        if slow:
            await asyncio.sleep(int(slow.group(1)) / 1000)

    def _reply(self, record: RecordedRequest) -> _Reply:
        prompt_tokens = sum(len(message.content.split()) for message in record.messages)
        last = record.messages[-1] if record.messages else None
        if last is not None and last.role == "tool":
            return _Reply(text=f"The tool said: {last.content}.", prompt_tokens=prompt_tokens)
        said = next((message.content for message in reversed(record.messages) if message.role == "user"), "")
        if record.tools and "weather" in said.lower():
            arguments = '{"city": ' if record.model.startswith("fake-bad-tool-args") else json.dumps({"city": "Paris"})
            call = chat_pb2.ToolCall(
                id=f"call_{len(self.requests)}",
                type=chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL,
                status=chat_pb2.TOOL_CALL_STATUS_COMPLETED,
                function=chat_pb2.FunctionCall(name=record.tools[0].name, arguments=arguments),
            )
            return _Reply(tool_call=call, prompt_tokens=prompt_tokens)
        return _Reply(text=f"You said: {said}.", prompt_tokens=prompt_tokens)

    def _chunk(
        self,
        record: RecordedRequest,
        reply: _Reply,
        *,
        delta: chat_pb2.Delta,
        done: int,
        finish_reason: int = sample_pb2.REASON_INVALID,
    ) -> chat_pb2.GetChatCompletionChunk:
        return chat_pb2.GetChatCompletionChunk(
            id=f"fake-{len(self.requests)}",
            model=record.model,
            created=_now(),
            system_fingerprint="fake",
            outputs=[chat_pb2.CompletionOutputChunk(index=0, delta=delta, finish_reason=finish_reason)],
            usage=self._usage(record, reply, done),
        )

    def _usage(self, record: RecordedRequest, reply: _Reply, done: int) -> usage_pb2.SamplingUsage:
        # Like xAI, reasoning tokens are counted apart from completion tokens, and in the total.
        reasoning = REASONING_TOKENS if record.model.startswith("fake-reasoning") else 0
        return usage_pb2.SamplingUsage(
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=done,
            reasoning_tokens=reasoning,
            total_tokens=reply.prompt_tokens + done + reasoning,
        )


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


class FakeXAIServer:
    """The fake on a loopback port of the running event loop; ``port=0`` picks a free one."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, word_delay_s: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.servicer = FakeChatServicer(word_delay_s=word_delay_s)
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.servicer.requests

    @property
    def cancellations(self) -> int:
        return self.servicer.cancellations

    async def start(self) -> FakeXAIServer:
        server = grpc.aio.server()
        chat_pb2_grpc.add_ChatServicer_to_server(self.servicer, server)
        self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        await server.start()
        self._server = server
        return self

    async def stop(self, grace_s: float | None = 0.2) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None

    async def __aenter__(self) -> FakeXAIServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()


async def _serve(host: str, port: int, word_delay_s: float) -> None:
    server = await FakeXAIServer(host=host, port=port, word_delay_s=word_delay_s).start()
    print(f"ready {server.port}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake xAI gRPC chat service for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as 'ready <port>')")
    parser.add_argument("--word-delay-ms", type=float, default=0.0, help="pause between streamed words")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.word_delay_ms / 1000))


if __name__ == "__main__":
    main()
