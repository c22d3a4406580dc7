"""A fake of OpenAI's Realtime transcription API on a real WebSocket, speaking its wire events.

``with FakeRealtimeServer() as fake: ...`` starts a ``websockets`` server on a free loopback port in a
background thread; ``fake.base_url`` is the HTTP base URL a provider is configured with
(``http://127.0.0.1:PORT/v1``; the client turns it into ``ws://…/v1/realtime?intent=transcription``)
and ``fake.sessions`` records each connection: its path, headers, the client events' types, the
``session.update`` it got and the bytes of PCM appended.

The protocol, as OpenAI's GA Realtime API speaks it for transcription sessions:

* on connect the server sends ``session.created``; ``session.update`` with ``session.type ==
  "transcription"`` and 24 kHz PCM is answered by ``session.updated`` (anything else: an ``error``
  event, ``invalid_request_error``);
* ``input_audio_buffer.append`` (base64 PCM16) adds to the buffer; ``input_audio_buffer.clear``
  empties it (``input_audio_buffer.cleared``);
* ``input_audio_buffer.commit`` with less than 100 ms of audio is an ``error``
  (``input_audio_buffer_commit_empty``); otherwise ``input_audio_buffer.committed`` (a new
  ``item_id``, the ``previous_item_id``), then, transcribed in the background, one
  ``conversation.item.input_audio_transcription.delta`` per word and ``….completed`` with the
  transcript and usage.

The transcript of a piece is the session's transcription ``prompt`` if it set one, else
``"piece N: S.SS seconds"`` (N counts the session's commits from 1; S the audio committed at 24 kHz).

Behaviour by the transcription model's name:

====================  ===========================================================================
``fake-error``        a commit is answered by an ``error`` event (``server_error``)
``fake-failed``       ``committed``, then ``conversation.item.input_audio_transcription.failed``
``fake-close``        a commit closes the connection (code 1011) without answering
``fake-silent``       a commit is never answered (the connection stays open)
``fake-slow-<ms>``    the words' deltas are spread over <ms> before ``completed``
``fake-reorder``      the first piece's ``completed`` is held until the second piece's is sent
anything else         normal
====================  ===========================================================================

``FakeRealtimeServer(redirect_to=URL)`` answers every handshake on ``/v1/realtime`` with HTTP 307 to
``URL`` instead; paths under ``/internal/`` are served normally (a same-origin redirect's target).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

SAMPLE_RATE = 24000
MIN_COMMIT_BYTES = SAMPLE_RATE * 2 // 10  # 100 ms


@dataclass
class RecordedSession:
    path: str
    headers: dict[str, str]
    events: list[str] = field(default_factory=list)  # the client events' types, in order
    session: dict[str, Any] = field(default_factory=dict)  # the last session.update's session
    audio_bytes: int = 0  # PCM appended (decoded)
    commits: int = 0

    @property
    def model(self) -> str:
        transcription = self.session.get("audio", {}).get("input", {}).get("transcription") or {}
        return str(transcription.get("model", ""))


class _Session:
    """One connection's state and its answers."""

    def __init__(self, ws: ServerConnection, record: RecordedSession, ids: itertools.count[int]) -> None:
        self.ws, self.record, self.ids = ws, record, ids
        self.buffer = bytearray()
        self.previous_item: str | None = None
        self.pieces = 0
        self.held: asyncio.Future[None] | None = None  # fake-reorder: the first piece waits for this
        self.tasks: set[asyncio.Task[None]] = set()

    def event_id(self) -> str:
        return f"event_{next(self.ids)}"

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps({"event_id": self.event_id(), **event}))

    async def error(self, kind: str, code: str, message: str, client_event: str | None = None) -> None:
        error = {"type": kind, "code": code, "message": message, "param": None, "event_id": client_event}
        await self.send({"type": "error", "error": error})

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": {"type": "transcription", "id": "sess_fake"}})
        async for message in self.ws:
            try:
                event = json.loads(message)
                kind = str(event["type"])
            except (ValueError, KeyError, TypeError):
                await self.error("invalid_request_error", "invalid_json", "The event is not valid JSON.")
                continue
            self.record.events.append(kind)
            handler = getattr(self, "on_" + kind.replace(".", "_"), None)
            if handler is None:
                await self.error("invalid_request_error", "invalid_value", f"Invalid value: '{kind}'.")
                continue
            await handler(event)

    async def on_session_update(self, event: dict[str, Any]) -> None:
        session = event.get("session") or {}
        audio_format = session.get("audio", {}).get("input", {}).get("format") or {}
        if session.get("type") != "transcription" or audio_format != {"type": "audio/pcm", "rate": SAMPLE_RATE}:
            await self.error("invalid_request_error", "invalid_value", "Invalid transcription session.")
            return
        self.record.session = session
        await self.send({"type": "session.updated", "session": session})

    async def on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        try:
            pcm = base64.b64decode(str(event.get("audio", "")), validate=True)
        except binascii.Error:
            await self.error("invalid_request_error", "invalid_value", "Invalid base64 audio.")
            return
        self.buffer += pcm
        self.record.audio_bytes += len(pcm)

    async def on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self.buffer.clear()
        await self.send({"type": "input_audio_buffer.cleared"})

    async def on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        self.record.commits += 1
        model = self.record.model
        if len(self.buffer) < MIN_COMMIT_BYTES:
            ms = len(self.buffer) * 1000 // (SAMPLE_RATE * 2)
            await self.error(
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {ms}.00ms of audio.",
            )
            return
        if model.startswith("fake-error"):
            await self.error("server_error", "server_error", "The server had an error while processing your request.")
            return
        if model.startswith("fake-close"):
            await self.ws.close(1011, "internal error")
            return
        if model.startswith("fake-silent"):
            return
        item_id = f"item_{next(self.ids)}"
        seconds = len(self.buffer) / 2 / SAMPLE_RATE
        self.buffer.clear()
        await self.send(
            {"type": "input_audio_buffer.committed", "previous_item_id": self.previous_item, "item_id": item_id}
        )
        self.previous_item = item_id
        self.pieces += 1
        task = asyncio.create_task(self.transcribe(item_id, self.pieces, seconds, model))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def transcribe(self, item_id: str, number: int, seconds: float, model: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            if model.startswith("fake-failed"):
                message = "Audio could not be decoded."
                error = {"type": "server_error", "code": "transcription_failed", "message": message}
                await self.send(
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item_id,
                        "content_index": 0,
                        "error": error,
                    }
                )
                return
            transcription = self.record.session.get("audio", {}).get("input", {}).get("transcription") or {}
            text = str(transcription.get("prompt") or f"piece {number}: {seconds:.2f} seconds")
            words = text.split(" ")
            gap_s = int(model.removeprefix("fake-slow-")) / 1000 / len(words) if model.startswith("fake-slow-") else 0
            for index, word in enumerate(words):
                if gap_s:
                    await asyncio.sleep(gap_s)
                delta = word if index == 0 else " " + word
                await self.send(
                    {
                        "type": "conversation.item.input_audio_transcription.delta",
                        "item_id": item_id,
                        "content_index": 0,
                        "delta": delta,
                    }
                )
            if model.startswith("fake-reorder"):
                if number == 1:
                    self.held = asyncio.get_running_loop().create_future()
                    await self.held
                elif self.held is not None:
                    await self.completed(item_id, text, seconds)
                    self.held.set_result(None)
                    return
            await self.completed(item_id, text, seconds)

    async def completed(self, item_id: str, text: str, seconds: float) -> None:
        usage = {"type": "tokens", "input_tokens": int(seconds * 10), "output_tokens": len(text.split())}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
                "usage": usage,
            }
        )


class FakeRealtimeServer:
    def __init__(self, *, redirect_to: str = "") -> None:
        self.redirect_to = redirect_to
        self.sessions: list[RecordedSession] = []
        self.handshakes = 0
        self.port = 0
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-realtime", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        self.sessions.clear()
        self.handshakes = 0

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake realtime server did not start")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await serve(
                self._handle, "127.0.0.1", 0, process_request=self._process_request, compression=None
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()
        self._loop.close()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        if self.redirect_to and request.path.startswith("/v1/realtime"):
            headers = Headers({"Location": self.redirect_to, "Content-Length": "0"})
            return Response(HTTPStatus.TEMPORARY_REDIRECT, "Temporary Redirect", headers, b"")
        if not request.path.startswith(("/v1/realtime", "/internal/")):  # /internal/: a redirect's target
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        record = RecordedSession(path=ws.request.path, headers=dict(ws.request.headers.raw_items()))
        self.sessions.append(record)
        session = _Session(ws, record, self._ids)
        with contextlib.suppress(ConnectionClosed):
            await session.run()
        for task in list(session.tasks):
            task.cancel()
