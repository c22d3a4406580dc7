"""A scripted voice-widget client for end-to-end tests and the voice benchmark.

Speaks the protocol of docs/websocket-protocol.md over a real WebSocket: streams WAV audio in
real time, records every event with its arrival time, and keeps played audio per response the
way a browser's playback queue would (dropping interrupted responses' frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
import urllib.request
import wave
from dataclasses import dataclass, field
from pathlib import Path

import websockets

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
FRAME_MS = 20


def read_wav(name: str) -> tuple[bytes, int]:
    with wave.open(str(FIXTURES / name)) as reader:
        return reader.readframes(reader.getnframes()), reader.getframerate()


def silence(ms: int, rate: int = 16000) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


def request_session(
    base_url: str, key: str, origin: str, visitor_id: str = "", resume: str | None = None, **credentials: str
) -> tuple[int, dict]:
    """POST /widget/session. ``credentials``: ``visitor_hash`` (with ``visitor_id``: a site's signed-in
    user), ``visitor_token`` (an anonymous visitor the platform minted), ``resume_token``."""
    body = {"key": key, "visitor_id": visitor_id, **({"resume": resume} if resume else {}), **credentials}
    request = urllib.request.Request(
        f"{base_url}/widget/session",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Origin": origin},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@dataclass
class Received:
    at: float
    event: dict


@dataclass
class VoiceClient:
    ws: websockets.ClientConnection
    output_rate: int = 24000
    events: list[Received] = field(default_factory=list)
    audio: dict[int, list[tuple[float, int]]] = field(default_factory=dict)  # response id → (arrival, bytes)
    interrupted: set[int] = field(default_factory=set)
    stale_chunks: int = 0
    close_code: int | None = None
    _reader: asyncio.Task | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def connect(cls, ws_url: str, origin: str) -> VoiceClient:
        ws = await websockets.connect(ws_url, origin=origin, max_size=2**22, open_timeout=10)
        client = cls(ws=ws)
        client._reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                now = time.monotonic()
                if isinstance(message, bytes):
                    (response_id,) = struct.unpack_from("<I", message)
                    if response_id in self.interrupted:
                        self.stale_chunks += 1
                    self.audio.setdefault(response_id, []).append((now, len(message) - 4))
                else:
                    event = json.loads(message)
                    if event["type"] == "response.interrupted":
                        self.interrupted.add(event["response_id"])
                    if event["type"] == "session.created":
                        self.output_rate = event["output_sample_rate"]
                    self.events.append(Received(now, event))
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self._changed.set()

    async def send(self, event: dict) -> None:
        await self.ws.send(json.dumps(event))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def start(self, sample_rate: int = 16000, **extra: object) -> dict:
        await self.send({"type": "session.start", "sample_rate": sample_rate, **extra})
        return await self.wait_for("session.created")

    async def stream(self, pcm: bytes, rate: int = 16000, *, realtime: bool = True, frame_ms: int = FRAME_MS) -> float:
        """Send audio in frames of ``frame_ms``, paced like a microphone: a frame goes out once its last
        sample has been "spoken" (``started`` + its end), as a browser's capture delivers it. Returns
        when the last frame was sent."""
        frame = rate * 2 * frame_ms // 1000
        started = time.monotonic()
        for offset in range(0, len(pcm), frame):
            chunk = pcm[offset : offset + frame]
            if realtime:
                delay = started + (offset + len(chunk)) / 2 / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.ws.send(chunk)
        return time.monotonic()

    def of_type(self, kind: str) -> list[dict]:
        return [r.event for r in self.events if r.event["type"] == kind]

    def first(self, kind: str, **match: object) -> Received | None:
        return next(
            (r for r in self.events if r.event["type"] == kind and all(r.event.get(k) == v for k, v in match.items())),
            None,
        )

    async def wait_for(self, kind: str, timeout: float = 15.0, **match: object) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self.first(kind, **match)
            if found:
                return found.event
            if self.close_code is not None:
                raise AssertionError(f"closed ({self.close_code}) before {kind} {match}; got {self.types()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind} {match} within {timeout} s; got {self.types()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_audio(self, response_id: int, timeout: float = 15.0) -> float:
        deadline = time.monotonic() + timeout
        while not self.audio.get(response_id):
            if time.monotonic() > deadline:
                raise AssertionError(f"no audio for response {response_id}; got {self.types()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)
        return self.audio[response_id][0][0]

    def played_ms(self, response_id: int, until: float) -> float:
        """What a browser would have played of a response by ``until``: real time from its first chunk."""
        chunks = self.audio.get(response_id, [])
        if not chunks:
            return 0.0
        received_ms = sum(size for _, size in chunks) / 2 / self.output_rate * 1000
        return max(0.0, min(received_ms, (until - chunks[0][0]) * 1000))

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        if self._reader:
            await asyncio.wait_for(self._reader, timeout)
        return self.close_code

    def types(self) -> list[str]:
        return [r.event["type"] for r in self.events]

    async def close(self) -> None:
        await self.ws.close()
        if self._reader:
            await asyncio.wait_for(self._reader, 5)
