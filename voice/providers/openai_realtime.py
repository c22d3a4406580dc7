"""Streaming speech-to-text over OpenAI's Realtime API (transcription sessions, the gpt-4o-transcribe family).

One WebSocket per visitor turn: ``wss://…/v1/realtime?intent=transcription``. The client sends
``session.update`` (``type: transcription``, 24 kHz PCM, the model and language, turn detection off:
the session decides where a piece ends), then ``input_audio_buffer.append`` events (base64 PCM16 at
24 kHz, resampled from the session's 16 kHz) and an ``input_audio_buffer.commit`` at each pause. The
server answers a commit with ``input_audio_buffer.committed`` (the new item's id), then
``conversation.item.input_audio_transcription.delta`` events and one ``.completed`` (or ``.failed``)
for that item; completions of different items may arrive in any order, so each commit waits for its
own item. An ``error`` event, a closed socket or a commit that is not answered in time fails the
stream (ProviderError); the session then transcribes the utterance in one batch request.

Not through the SDK's realtime client: that client connects to the host name itself (a second DNS
answer could move it) and follows redirects. Here, as in :mod:`core.netguard`, the host is resolved
under the policy of the moment, the socket connects to an address that was checked (the name stays
in the Host header and TLS), no proxy from the environment is used and no redirect is followed.

Bounded everywhere: connecting (``connect_timeout_s``), each commit (``commit_timeout_s``), the audio
waiting to be sent (``max_buffered_ms``: a stream that cannot keep up fails rather than grow), the
size of a server message, and closing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, WebSocketException

from core import netguard
from voice.audio.frames import bytes_to_ms
from voice.audio.resample import StreamResampler
from voice.providers.base import (
    STREAM_SAMPLE_RATE,
    ErrorKind,
    ProviderError,
    SpeechToText,
    Transcript,
    TranscriptionStream,
)
from voice.providers.openai_api import OPENAI, OPENAI_BASE_URL, language_code

log = logging.getLogger(__name__)

REALTIME_SAMPLE_RATE = 24000  # the only PCM rate the Realtime API takes
CONNECT_TIMEOUT_S = 3.0
COMMIT_TIMEOUT_S = 3.0
CLOSE_TIMEOUT_S = 1.0
MAX_BUFFERED_MS = 30_000  # audio appended but not yet sent (still connecting, or a slow link)
MIN_COMMIT_MS = 100  # OpenAI refuses to commit less ("buffer too small")
MAX_APPEND_EVENT_BYTES = 512 * 1024  # PCM per append event (OpenAI's limit is 15 MiB of base64)
MAX_SERVER_MESSAGE_BYTES = 1024 * 1024
_BYTES_PER_MS_OUT = REALTIME_SAMPLE_RATE * 2 // 1000  # 48
_SECRET_PATTERN = re.compile(r"(?i)\bsk-[A-Za-z0-9_*\-]{4,}|\bbearer\s+[^\s,;'\"]+")
_MAX_MESSAGE_CHARS = 300


def realtime_url(base_url: str | None) -> str:
    """The transcription WebSocket for an HTTP base URL: ``https://host/v1`` → ``wss://host/v1/realtime?intent=transcription``."""
    parts = urlsplit((base_url or OPENAI_BASE_URL).rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ValueError(f"not an http(s) base URL: {base_url!r}")
    return urlunsplit((scheme, parts.netloc, f"{parts.path}/realtime", "intent=transcription", ""))


class OpenAIRealtimeSpeechToText(SpeechToText):
    """A batch speech-to-text provider (``transcribe``, unchanged) that also streams (``open_stream``)
    over a Realtime transcription session with the same model and key."""

    def __init__(
        self,
        batch: SpeechToText,
        *,
        api_key: str,
        base_url: str | None = None,
        policy: netguard.PolicySource = netguard.TRUSTED,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        commit_timeout_s: float = COMMIT_TIMEOUT_S,
        max_buffered_ms: int = MAX_BUFFERED_MS,
    ) -> None:
        self.batch = batch
        self.provider, self.model = batch.provider, batch.model
        self.url = realtime_url(base_url)
        self.api_key = api_key
        self.policy = policy
        self.connect_timeout_s, self.commit_timeout_s = connect_timeout_s, commit_timeout_s
        self.max_buffered_ms = max_buffered_ms

    def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        return self.batch.transcribe(pcm, sample_rate, language=language)

    def open_stream(self, *, language: str, sample_rate: int = STREAM_SAMPLE_RATE) -> RealtimeTranscriptionStream:
        stream = RealtimeTranscriptionStream(
            sample_rate=sample_rate,
            url=self.url,
            api_key=self.api_key,
            model=self.model,
            language=language,
            provider=self.provider,
            policy=self.policy,
            connect_timeout_s=self.connect_timeout_s,
            commit_timeout_s=self.commit_timeout_s,
            max_buffered_ms=self.max_buffered_ms,
        )
        with contextlib.suppress(RuntimeError):  # outside a running loop: it connects at the first append
            stream.start()
        return stream


class _NoRedirects(ws_connect):
    """``websockets``' connect, refusing every redirect (a redirect is how a public URL reaches an internal one)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


@dataclass(slots=True)
class _Piece:
    """One commit: its item (once the server names it), its deltas, and who waits for its transcript."""

    answer: asyncio.Future[str]
    item_id: str = ""
    deltas: list[str] = field(default_factory=list)


class RealtimeTranscriptionStream(TranscriptionStream):
    """One transcription session (see the module's docstring). ``partial``: the words transcribed so far
    of the oldest piece still waiting for its transcript."""

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        model: str,
        language: str,
        sample_rate: int = STREAM_SAMPLE_RATE,
        provider: str = OPENAI,
        policy: netguard.PolicySource = netguard.TRUSTED,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        commit_timeout_s: float = COMMIT_TIMEOUT_S,
        max_buffered_ms: int = MAX_BUFFERED_MS,
    ) -> None:
        self.url, self.api_key, self.model, self.provider, self.policy = url, api_key, model, provider, policy
        self.language = language_code(language)
        self.connect_timeout_s, self.commit_timeout_s = connect_timeout_s, commit_timeout_s
        self.max_buffered_bytes = max_buffered_ms * _BYTES_PER_MS_OUT
        self.appended_ms = 0
        self._appended_bytes = 0
        self._carry = b""  # an odd byte: half a sample, waiting for its pair
        self._rate_in = sample_rate  # what is appended (the session's rate)
        self._resampler = StreamResampler(sample_rate, REALTIME_SAMPLE_RATE)
        self._uncommitted_bytes = 0  # 24 kHz audio queued since the last commit
        self._outbox: deque[bytes | str] = deque()  # PCM to append, or a control event, in order
        self._outbox_audio_bytes = 0
        self._wake = asyncio.Event()
        self._unnamed: deque[_Piece] = deque()  # committed, waiting for input_audio_buffer.committed
        self._pieces: dict[str, _Piece] = {}  # item id → piece, waiting for its transcript
        self._failure: ProviderError | None = None
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._closed = False

    # -- the interface ---------------------------------------------------------------------------
    @property
    def partial(self) -> str:
        waiting = [piece for piece in self._pieces.values() if piece.deltas]
        return "".join(waiting[0].deltas).strip() if waiting else ""

    def start(self) -> None:
        """Start connecting (needs a running event loop). Called by ``open_stream``; idempotent."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"realtime-stt {self.model}")

    async def append(self, pcm: bytes) -> None:
        if self._closed or self._failure is not None or not pcm:
            return
        self.start()
        data = self._carry + pcm if self._carry else pcm
        usable = len(data) - len(data) % 2
        self._carry = data[usable:]
        self._appended_bytes += usable
        self.appended_ms = int(bytes_to_ms(self._appended_bytes, self._rate_in))
        self._queue_audio(self._resampler.process(data[:usable]))

    async def commit(self) -> Transcript:
        if self._closed:
            raise self._error(ErrorKind.UNAVAILABLE, "the stream is closed")
        if self._failure is not None:
            raise self._failure
        self.start()
        self._queue_audio(self._resampler.flush())  # the resampler's delayed tail belongs to this piece
        if self._failure is not None:
            raise self._failure
        if self._uncommitted_bytes < MIN_COMMIT_MS * _BYTES_PER_MS_OUT:
            if self._uncommitted_bytes:  # too little to transcribe: drop it, or it would join the next piece
                self._queue_event({"type": "input_audio_buffer.clear"})
                self._uncommitted_bytes = 0
            return Transcript(text="", final=True)
        piece = _Piece(answer=asyncio.get_running_loop().create_future())
        self._unnamed.append(piece)
        self._queue_event({"type": "input_audio_buffer.commit"})
        self._uncommitted_bytes = 0
        try:
            async with asyncio.timeout(self.commit_timeout_s):
                text = await piece.answer
        except TimeoutError:
            # The server may still answer, but the pieces after this one could no longer be told apart.
            failure = self._error(ErrorKind.TIMEOUT, f"no transcript within {self.commit_timeout_s * 1000:.0f} ms")
            self._fail(failure)
            raise failure from None
        return Transcript(text=text, final=True)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._fail(self._error(ErrorKind.UNAVAILABLE, "the stream was closed"), quiet=True)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # its end, whatever it was; a cancellation of close() itself still propagates
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await ws.close()
            ws.transport.abort()

    # -- the outbox ------------------------------------------------------------------------------
    def _queue_audio(self, pcm: bytes) -> None:
        if not pcm or self._failure is not None:
            return
        if self._outbox_audio_bytes + len(pcm) > self.max_buffered_bytes:
            waiting_ms = (self._outbox_audio_bytes + len(pcm)) // _BYTES_PER_MS_OUT
            self._fail(self._error(ErrorKind.UNAVAILABLE, f"not keeping up: {waiting_ms} ms of audio not yet sent"))
            return
        self._outbox.append(pcm)
        self._outbox_audio_bytes += len(pcm)
        self._uncommitted_bytes += len(pcm)
        self._wake.set()

    def _queue_event(self, event: dict[str, Any]) -> None:
        self._outbox.append(json.dumps(event))
        self._wake.set()

    def _next_frame(self) -> str:
        """The next text frame to send: a control event, or the queued PCM up to the next event, as one append."""
        head = self._outbox.popleft()
        if isinstance(head, str):
            return head
        chunks, size, outbox = [head], len(head), self._outbox
        while outbox and isinstance(chunk := outbox[0], bytes) and size + len(chunk) <= MAX_APPEND_EVENT_BYTES:
            outbox.popleft()
            chunks.append(chunk)
            size += len(chunk)
        self._outbox_audio_bytes -= size
        audio = base64.b64encode(b"".join(chunks)).decode("ascii")
        return json.dumps({"type": "input_audio_buffer.append", "audio": audio})

    # -- the connection --------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            ws = await self._connect()
        except ProviderError as failure:
            self._fail(failure)
            return
        except (WebSocketException, ValueError, OSError) as exc:  # a URL or handshake websockets refuses
            self._fail(self._error(ErrorKind.UNAVAILABLE, f"could not connect: {type(exc).__name__}: {exc}"))
            return
        self._ws = ws
        sender = asyncio.create_task(self._send(ws))
        try:
            async for message in ws:
                self._on_message(message)
            self._fail(self._error(ErrorKind.UNAVAILABLE, f"the server closed the connection{_close_reason(ws)}"))
        except ConnectionClosed:
            self._fail(self._error(ErrorKind.UNAVAILABLE, f"the connection was lost{_close_reason(ws)}"))
        except Exception as exc:  # noqa: BLE001 - whatever broke, a waiting commit must hear of it now
            self._fail(self._error(ErrorKind.UNAVAILABLE, f"the stream broke: {type(exc).__name__}: {exc}"))
        finally:
            sender.cancel()
            await asyncio.wait({sender})

    async def _send(self, ws: ClientConnection) -> None:
        session: dict[str, Any] = {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": REALTIME_SAMPLE_RATE},
                    "transcription": {"model": self.model} | ({"language": self.language} if self.language else {}),
                    "turn_detection": None,  # we commit ourselves, at the session's pauses
                }
            },
        }
        try:
            await ws.send(json.dumps({"type": "session.update", "session": session}))
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._outbox and self._failure is None:
                    await ws.send(self._next_frame())
        except ConnectionClosed:
            self._fail(self._error(ErrorKind.UNAVAILABLE, f"the connection was lost{_close_reason(ws)}"))

    async def _connect(self) -> ClientConnection:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        policy = self.policy() if callable(self.policy) else self.policy
        try:
            addresses = await asyncio.to_thread(netguard.resolve_host, host, port, policy)
        except netguard.UnsafeURLError as exc:
            raise self._error(ErrorKind.BAD_REQUEST, f"not called: {exc}") from exc
        failure = self._error(ErrorKind.UNAVAILABLE, f"{host} has no address")
        deadline = time.monotonic() + self.connect_timeout_s
        for address in addresses[: netguard.MAX_ADDRESSES]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return await _NoRedirects(
                    self.url,
                    host=str(address),  # the address checked above; the name stays in Host and TLS
                    port=port,
                    additional_headers={"Authorization": f"Bearer {self.api_key}"},
                    proxy=None,  # a proxy would connect to the name, unchecked
                    compression=None,
                    open_timeout=remaining,
                    close_timeout=CLOSE_TIMEOUT_S,
                    max_size=MAX_SERVER_MESSAGE_BYTES,
                )
            except InvalidStatus as exc:
                raise self._refused(exc) from exc
            except (TimeoutError, OSError, InvalidHandshake) as exc:
                failure = self._error(ErrorKind.UNAVAILABLE, f"could not connect to {address}: {type(exc).__name__}")
                if isinstance(exc, TimeoutError):
                    failure = self._error(ErrorKind.TIMEOUT, f"no connection within {self.connect_timeout_s:.1f} s")
        raise failure

    def _refused(self, exc: InvalidStatus) -> ProviderError:
        status = exc.response.status_code
        detail = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
        if 300 <= status < 400:
            location = exc.response.headers.get("Location", "")
            return self._error(ErrorKind.BAD_REQUEST, f"HTTP {status}: a redirect to {location} is not followed")
        if status == 429:
            return self._error(ErrorKind.RATE_LIMITED, f"HTTP 429 rate limited: {detail}")
        if status >= 500:
            return self._error(ErrorKind.UNAVAILABLE, f"HTTP {status}: {detail}")
        return self._error(ErrorKind.BAD_REQUEST, f"HTTP {status}: {detail}")

    # -- server events ---------------------------------------------------------------------------
    def _on_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            self._fail(self._error(ErrorKind.UNAVAILABLE, "the server sent something that is not JSON"))
            return
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "input_audio_buffer.committed":
            item_id = str(event.get("item_id", ""))
            if self._unnamed and item_id:
                piece = self._unnamed.popleft()
                piece.item_id = item_id
                self._pieces[item_id] = piece
        elif kind == "conversation.item.input_audio_transcription.delta":
            piece = self._pieces.get(str(event.get("item_id", "")))
            if piece is not None and isinstance(event.get("delta"), str):
                piece.deltas.append(event["delta"])
        elif kind == "conversation.item.input_audio_transcription.completed":
            piece = self._pieces.pop(str(event.get("item_id", "")), None)
            transcript = event.get("transcript")
            if piece is not None and not piece.answer.done():
                text = transcript if isinstance(transcript, str) else "".join(piece.deltas)
                piece.answer.set_result(text.strip())
        elif kind == "conversation.item.input_audio_transcription.failed":
            piece = self._pieces.pop(str(event.get("item_id", "")), None)
            if piece is not None:
                error = event.get("error") if isinstance(event.get("error"), dict) else {}
                _settle(piece.answer, self._error(ErrorKind.UNAVAILABLE, f"transcription failed: {_describe(error)}"))
        elif kind == "error":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            self._fail(self._error(_error_kind(error), f"error event: {_describe(error)}"))

    # -- failures --------------------------------------------------------------------------------
    def _error(self, kind: ErrorKind, text: str) -> ProviderError:
        return ProviderError(kind, _redact(f"{self.provider}: {text}", (self.api_key,)), provider=self.provider)

    def _fail(self, failure: ProviderError, *, quiet: bool = False) -> None:
        """The stream is done: every commit waiting fails with ``failure``, and so does every later one."""
        if self._failure is None:
            self._failure = failure
            if not quiet:
                log.info("%s %s stream failed: %s", self.provider, self.model, failure)
        self._outbox.clear()
        self._outbox_audio_bytes = 0
        for piece in (*self._unnamed, *self._pieces.values()):
            _settle(piece.answer, failure)
        self._unnamed.clear()
        self._pieces.clear()
        self._wake.set()


def _settle(answer: asyncio.Future[str], failure: ProviderError) -> None:
    if not answer.done():
        answer.set_exception(failure)
        answer.exception()  # retrieved: a commit that was given up on is not an unhandled error


def _error_kind(error: dict[str, Any]) -> ErrorKind:
    code, kind = str(error.get("code") or ""), str(error.get("type") or "")
    if "rate_limit" in code or "rate_limit" in kind:
        return ErrorKind.RATE_LIMITED
    if kind in ("invalid_request_error", "authentication_error", "permission_error"):
        return ErrorKind.BAD_REQUEST
    return ErrorKind.UNAVAILABLE


def _describe(error: dict[str, Any]) -> str:
    parts = [str(error[key]) for key in ("type", "code") if error.get(key)]
    message = str(error.get("message") or "no message")
    return f"{message} ({', '.join(parts)})" if parts else message


def _close_reason(ws: ClientConnection) -> str:
    if ws.close_code is None:
        return ""
    return f" (code {ws.close_code}{': ' + ws.close_reason if ws.close_reason else ''})"


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _SECRET_PATTERN.sub("[redacted]", text)
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 1] + "…"
