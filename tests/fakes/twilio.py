"""A fake Twilio, written from Twilio's documentation: the voice webhook and a Media Streams call.

* ``twilio_signature`` signs a webhook request as Twilio does: HMAC-SHA1, keyed with the account's auth
  token, over the full URL followed by every POST parameter's name and value sorted by name; base64.
* ``ring`` POSTs the voice webhook ("a call comes in") with that signature, like Twilio's
  ``application/x-www-form-urlencoded`` request, and returns the status and the TwiML.
* ``FakeTwilioCall`` then does what Twilio does with ``<Connect><Stream>``: opens the WebSocket, sends
  ``connected`` and ``start`` (with the ``<Parameter>``s as ``customParameters``), streams the caller's
  8 kHz µ-law in 20 ms ``media`` messages in real time, sends ``dtmf`` and ``stop``. It plays what the
  server sends like Twilio's buffer: ``media`` queues audio that plays in real time, a ``mark`` is echoed
  when the audio queued before it has played, and ``clear`` drops the queued audio and echoes the marks
  still pending at once.

It also keeps score for tests: the audio per reply (read from the server's mark names ``r<id>:<ms>``),
when each ``clear`` arrived, how much of each reply had played by then, and any audio of a cleared reply
that arrived after its ``clear`` (stale audio: must never happen).

Audio in is made from the speech fixtures: 16 kHz WAV → 8 kHz with soxr → µ-law by G.711's reference
algorithm, one sample at a time (independent of the server's lookup tables).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import wave
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr
import websockets

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
RATE = 8000
FRAME_BYTES = 160  # 20 ms
ULAW_SILENCE = b"\xff"


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@functools.lru_cache(maxsize=16384)
def _base64(ulaw: bytes) -> str:
    """Callers speak the same fixtures: each 20 ms frame is encoded once."""
    return base64.b64encode(ulaw).decode()


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def ring(
    base_url: str,
    *,
    auth_token: str,
    to: str,
    caller: str = "+15005550006",
    account_sid: str = "AC" + "0" * 32,
    call_sid: str | None = None,
    signed_url: str | None = None,
    signature: str | None = None,
    path: str = "/telephony/twilio/voice",
    headers: dict[str, str] | None = None,
    direction: str = "inbound",
    timeout_s: float = 10.0,
) -> tuple[int, str, str]:
    """Twilio's voice webhook: a new inbound call ringing, or (``direction="outbound-api"``) a call placed
    through the REST API that ``to`` answered (``caller`` is then the organization's number).
    Returns (HTTP status, body, call SID)."""
    call_sid = call_sid or new_sid("CA")
    params = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing" if direction == "inbound" else "in-progress",
        "Called": to,
        "Caller": caller,
        "Direction": direction,
        "From": caller,
        "To": to,
    }
    return _post_signed(base_url + path, params, auth_token, signed_url, signature, headers, call_sid, timeout_s)


def report_status(
    url: str, *, auth_token: str, account_sid: str, call_sid: str, status: str, duration_s: int | None = None
) -> int:
    """A status callback, as Twilio posts it to the call's ``StatusCallback``: the HTTP status."""
    params = {"AccountSid": account_sid, "CallSid": call_sid, "CallStatus": status, "ApiVersion": "2010-04-01"}
    if duration_s is not None:
        params["CallDuration"] = str(duration_s)
    return _post_signed(url, params, auth_token, None, None, None, call_sid, 10.0)[0]


def _post_signed(
    url: str,
    params: dict[str, str],
    auth_token: str,
    signed_url: str | None,
    signature: str | None,
    headers: dict[str, str] | None,
    call_sid: str,
    timeout_s: float,
) -> tuple[int, str, str]:
    signature = signature if signature is not None else twilio_signature(auth_token, signed_url or url, params)
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
            **(headers or {}),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode(), call_sid
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), call_sid


@dataclass(frozen=True)
class StreamInstruction:
    url: str
    parameters: dict[str, str]


def stream_of(twiml: str) -> StreamInstruction | None:
    """The ``<Connect><Stream>`` of a TwiML answer, or None (a ``<Say>``/``<Hangup>`` refusal)."""
    root = ET.fromstring(twiml)
    stream = root.find("./Connect/Stream")
    if stream is None:
        return None
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return StreamInstruction(url=stream.get("url", ""), parameters=parameters)


def said(twiml: str) -> str:
    return " ".join((say.text or "") for say in ET.fromstring(twiml).iter("Say"))


# -- audio: G.711 µ-law by the reference algorithm ------------------------------------------
_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _linear_to_ulaw(sample: int) -> int:
    pcm_val = sample >> 2
    mask = 0xFF
    if pcm_val < 0:
        pcm_val, mask = -pcm_val, 0x7F
    pcm_val = min(pcm_val, 8159) + 0x21
    seg = next((i for i, end in enumerate(_SEG_UEND) if pcm_val <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm_val >> (seg + 1)) & 0xF)) ^ mask


def _ulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return (0x84 - t) if code & 0x80 else (t - 0x84)


_DECODE = np.array([_ulaw_to_linear(c) for c in range(256)], dtype="<i2")


def phone_speech(name: str) -> bytes:
    """A speech fixture as a caller's line carries it: 8 kHz µ-law."""
    with wave.open(str(FIXTURES / name)) as reader:
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
        rate = reader.getframerate()
    narrow = soxr.resample(pcm, rate, RATE).astype("<i2")
    return bytes(_linear_to_ulaw(int(s)) for s in narrow)


def ulaw_silence(ms: int) -> bytes:
    return ULAW_SILENCE * (RATE * ms // 1000)


def decode(ulaw: bytes) -> np.ndarray:
    return _DECODE[np.frombuffer(ulaw, dtype=np.uint8)]


# -- the call -----------------------------------------------------------------------------------
@dataclass
class _Queued:
    plays_at: float  # when this item's audio starts (media) or is reached (mark)
    ends_at: float
    kind: str  # "media" or "mark"
    size: int = 0
    name: str = ""


@dataclass
class FakeTwilioCall:
    """One call's media stream, from Twilio's side."""

    ws: websockets.ClientConnection
    stream_sid: str
    call_sid: str
    account_sid: str
    sequence: int = 0
    chunk: int = 0
    sent_audio_ms: float = 0.0
    queue: list[_Queued] = field(default_factory=list)
    play_until: float = 0.0
    unattributed: list[tuple[float, int]] = field(default_factory=list)  # media not yet followed by a mark
    audio: dict[int, int] = field(default_factory=dict)  # reply id → µ-law bytes received
    played: dict[int, float] = field(default_factory=dict)  # reply id → ms played (until any clear)
    current_reply: int | None = None
    clears: list[tuple[float, int | None]] = field(default_factory=list)  # (arrival, the reply it cut)
    cleared_at: dict[int, float] = field(default_factory=dict)
    stale_media: int = 0
    marks_received: list[str] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    received: list[tuple[float, dict]] = field(default_factory=list)
    close_code: int | None = None
    _timers: list[asyncio.Task] = field(default_factory=list)
    _reader: asyncio.Task | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def connect(cls, stream: StreamInstruction, *, call_sid: str, account_sid: str = "AC" + "0" * 32):
        ws = await websockets.connect(stream.url, max_size=2**20, open_timeout=10)
        call = cls(ws=ws, stream_sid=new_sid("MZ"), call_sid=call_sid, account_sid=account_sid)
        call._reader = asyncio.create_task(call._read())
        LIVE_STREAMS[call_sid] = (asyncio.get_running_loop(), call)  # for FakeTwilioRest's call updates
        return call

    # -- Twilio → server ------------------------------------------------------------------------
    async def _send(self, message: dict) -> None:
        self.sequence += 1
        await self.ws.send(json.dumps({**message, "sequenceNumber": str(self.sequence)}))

    async def start(self, parameters: dict[str, str], *, connected: bool = True) -> None:
        if connected:
            await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self._send(
            {
                "event": "start",
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": parameters,
                },
            }
        )

    def media_message(self, ulaw: bytes) -> dict:
        self.chunk += 1
        return {
            "event": "media",
            "streamSid": self.stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(self.chunk),
                "timestamp": str(round(self.sent_audio_ms)),
                "payload": base64.b64encode(ulaw).decode(),
            },
        }

    def media_text(self, ulaw: bytes) -> str:
        """``media_message`` with its sequence number, as the JSON text Twilio sends, built by formatting:
        a bench's 200 callers send 10,000 of these a second from one process, on the core next to the
        server's (json.dumps was a sixth of the callers' CPU)."""
        self.chunk += 1
        self.sequence += 1
        return (
            f'{{"event":"media","sequenceNumber":"{self.sequence}","streamSid":"{self.stream_sid}",'
            f'"media":{{"track":"inbound","chunk":"{self.chunk}","timestamp":"{round(self.sent_audio_ms)}",'
            f'"payload":"{_base64(ulaw)}"}}}}'
        )

    async def speak(self, ulaw: bytes, *, realtime: bool = True) -> None:
        """The caller's audio in 20 ms media messages, each sent once its last sample was "spoken"."""
        started = time.monotonic()
        for offset in range(0, len(ulaw), FRAME_BYTES):
            frame = ulaw[offset : offset + FRAME_BYTES]
            if realtime:
                delay = started + (offset + len(frame)) / RATE - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.send_frame(frame)

    async def send_frame(self, ulaw: bytes) -> None:
        """One media message of the caller's audio, now (``speak`` paces them; a bench's line sends its own)."""
        await self.ws.send(self.media_text(ulaw))
        self.sent_audio_ms += len(ulaw) / RATE * 1000

    async def press(self, digit: str) -> None:
        await self._send(
            {"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}
        )

    async def stop(self) -> None:
        await self._send(
            {
                "event": "stop",
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    # -- server → Twilio: the playback buffer ------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.monotonic()
                message = json.loads(raw)
                self.received.append((now, message))
                kind = message.get("event")
                if kind == "media":
                    self._on_media(now, base64.b64decode(message["media"]["payload"]))
                elif kind == "mark":
                    self._on_mark(now, message["mark"]["name"])
                elif kind == "clear":
                    await self._on_clear(now)
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            last_clear = max(self.cleared_at.values(), default=None)  # media after a clear that no mark followed
            self.stale_media += sum(
                1 for arrived, _ in self.unattributed if last_clear is not None and arrived >= last_clear
            )
            for timer in self._timers:
                timer.cancel()
            self._changed.set()

    def _on_media(self, now: float, ulaw: bytes) -> None:
        starts = max(now, self.play_until)
        self.play_until = starts + len(ulaw) / RATE
        self.queue.append(_Queued(plays_at=starts, ends_at=self.play_until, kind="media", size=len(ulaw)))
        self.unattributed.append((now, len(ulaw)))

    def _on_mark(self, now: float, name: str) -> None:
        """A mark names the reply of the media just before it. The server sends each chunk with its own
        mark, so media not followed by its own mark is a chunk whose reply is unknown: after a ``clear``
        it can only be a leftover of the cleared reply, and counts as stale."""
        self.marks_received.append(name)
        reply = int(name.partition(":")[0][1:])
        self.current_reply = reply
        *unmarked, own = self.unattributed or [(now, 0)]
        last_clear = max(self.cleared_at.values(), default=None)
        for arrived, size in unmarked:
            if last_clear is not None and arrived >= last_clear:
                self.stale_media += 1
            else:
                self.audio[reply] = self.audio.get(reply, 0) + size
        arrived, size = own
        if size:
            self.audio[reply] = self.audio.get(reply, 0) + size
            if reply in self.cleared_at and arrived >= self.cleared_at[reply]:
                self.stale_media += 1
        self.unattributed.clear()
        item = _Queued(plays_at=self.play_until, ends_at=self.play_until, kind="mark", name=name)
        self.queue.append(item)
        self._timers.append(asyncio.create_task(self._echo_when_played(item)))

    async def _echo_when_played(self, item: _Queued) -> None:
        await asyncio.sleep(max(0.0, item.ends_at - time.monotonic()))
        if item in self.queue:
            await self._echo(item)

    async def _echo(self, item: _Queued) -> None:
        index = self.queue.index(item)
        for played in self.queue[: index + 1]:  # the audio before the mark has played
            if played.kind == "media":
                reply = self._reply_of(item)
                self.played[reply] = self.played.get(reply, 0.0) + played.size / RATE * 1000
        del self.queue[: index + 1]
        self.marks_echoed.append(item.name)
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": item.name}}))

    @staticmethod
    def _reply_of(item: _Queued) -> int:
        return int(item.name.partition(":")[0][1:])

    async def _on_clear(self, now: float) -> None:
        cut = self.current_reply
        self.clears.append((now, cut))
        if cut is not None:
            self.cleared_at[cut] = now
            # The part of the queued audio already playing counts as played up to now.
            for item in self.queue:
                if item.kind == "media" and item.plays_at < now:
                    self.played[cut] = self.played.get(cut, 0.0) + (min(now, item.ends_at) - item.plays_at) * 1000
        pending = [item for item in self.queue if item.kind == "mark"]
        self.queue.clear()
        self.play_until = now
        for item in pending:  # Twilio returns the marks of the cleared audio at once
            self.marks_echoed.append(item.name)
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.ws.send(
                    json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": item.name}})
                )

    # -- for tests -----------------------------------------------------------------------------------
    async def wait_until(self, check, timeout: float = 20.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.close_code is not None and not check():
                raise AssertionError(f"stream closed ({self.close_code}) before {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"not within {timeout} s: {what}; marks {self.marks_received[-5:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    async def wait_heard(self, reply: int, timeout: float = 20.0) -> None:
        """Until the reply's audio has arrived and played to its last mark."""

        def done() -> bool:
            names = [n for n in self.marks_received if n.startswith(f"r{reply}:")]
            return bool(names) and names[-1] in self.marks_echoed and not self._pending_of(reply)

        await self.wait_until(done, timeout, f"reply {reply} heard")

    def _pending_of(self, reply: int) -> bool:
        return any(item.kind == "mark" and self._reply_of(item) == reply for item in self.queue)

    def replies(self) -> list[int]:
        return sorted(self.audio)

    async def wait_closed(self, timeout: float = 15.0) -> int | None:
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        return self.close_code

    async def hang_up(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.stop()
        await self.ws.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)


# -- Twilio's REST API ----------------------------------------------------------------------------
# The media streams open in this process, by call SID, with their event loop: a call updated through the
# REST API leaves its stream, as on Twilio.
LIVE_STREAMS: dict[str, tuple[asyncio.AbstractEventLoop, FakeTwilioCall]] = {}


def _snake(form: dict[str, str]) -> dict[str, str]:
    return {"".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_"): v for key, v in form.items()}


@dataclass
class RestRequest:
    method: str
    path: str
    form: dict[str, str]
    account_sid: str
    auth_token: str


class FakeTwilioRest:
    """Twilio's REST API (``/2010-04-01/Accounts/{AccountSid}/Calls…``) on a real loopback socket, in a
    thread. Records every request with its Basic credentials; answers as Twilio documents:

    - ``POST …/Calls.json`` (``To``, ``From``, ``Url``…): 201 and a call resource, status ``queued``
      (``refuse_calls``: 400 with Twilio's error shape, naming the account as Twilio's messages do;
      ``before_answer(request, call_sid)`` runs first, as Twilio's own webhooks may beat its answer);
    - ``POST …/Calls/{CallSid}.json`` (``Twiml``, ``Status``…): 200 and the call resource; as on Twilio,
      new TwiML moves the call off its media stream: a live ``FakeTwilioCall`` of that call gets ``stop``
      (and its socket closes) before the answer goes out;
    - ``POST …/Calls/{CallSid}/Recordings.json``: 201 and a recording resource;
    - ``GET …/IncomingPhoneNumbers.json?PhoneNumber=…``: the number when the account holds it (``owners`` maps
      E.164 → the AccountSid holding it, ``own()`` adds one; a number nobody holds is in no account) with its
      ``PN…`` SID (``numbers`` maps E.164 → SID, else one derived from the number), else an empty page;
      ``POST …/IncomingPhoneNumbers/{Sid}.json``: 200;
    - anything else: 404 with Twilio's error shape;
    - an account in ``credentials`` (AccountSid → auth token) asked with another token: 401, as Twilio
      answers made-up credentials.
    """

    def __init__(self) -> None:
        import http.server
        import threading

        self.requests: list[RestRequest] = []
        self.numbers: dict[str, str] = {}
        self.owners: dict[str, str] = {}
        self.credentials: dict[str, str] = {}
        self.refuse_calls = False
        self.before_answer: Callable[[RestRequest, str], None] | None = None
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                user, _, password = (
                    base64.b64decode(self.headers.get("Authorization", "Basic ").split(" ", 1)[1] or b"")
                    .decode()
                    .partition(":")
                )
                request = RestRequest("POST", self.path, form, user, password)
                fake.requests.append(request)
                parts = self.path.split("?")[0].strip("/").split("/")
                if self._unauthenticated(parts, password):
                    return
                if len(parts) == 4 and parts[3] == "Calls.json" and fake.refuse_calls:
                    message = f"Account {parts[2]} is not allowed to call {form.get('To', '')}"
                    self._answer(400, {"code": 21215, "message": message, "status": 400})
                elif len(parts) == 4 and parts[3] == "Calls.json":
                    call_sid = new_sid("CA")
                    if fake.before_answer is not None:
                        fake.before_answer(request, call_sid)
                    self._answer(201, fake.call_resource(parts[2], call_sid, form, status="queued"))
                elif len(parts) == 5 and parts[3] == "Calls" and parts[4].endswith(".json"):
                    if "Twiml" in form or "Url" in form:
                        fake.end_stream(parts[4][:-5])
                    self._answer(200, fake.call_resource(parts[2], parts[4][:-5], form, status="in-progress"))
                elif len(parts) == 6 and parts[3] == "Calls" and parts[5] == "Recordings.json":
                    self._answer(201, {"sid": new_sid("RE"), "call_sid": parts[4], "status": "in-progress"})
                elif len(parts) == 5 and parts[3] == "IncomingPhoneNumbers":
                    self._answer(200, {"sid": parts[4][:-5], "account_sid": parts[2], **_snake(form)})
                else:
                    self._not_found()

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                user, _, password = (
                    base64.b64decode(self.headers.get("Authorization", "Basic ").split(" ", 1)[1] or b"")
                    .decode()
                    .partition(":")
                )
                fake.requests.append(RestRequest("GET", self.path, dict(urllib.parse.parse_qsl(query)), user, password))
                parts = path.strip("/").split("/")
                if self._unauthenticated(parts, password):
                    return
                if len(parts) == 4 and parts[3] == "IncomingPhoneNumbers.json":
                    number = dict(urllib.parse.parse_qsl(query)).get("PhoneNumber", "")
                    sid = fake.numbers.get(number) or "PN" + hashlib.sha1(number.encode()).hexdigest()[:32]
                    held = number and fake.owners.get(number) == parts[2]
                    found = [{"sid": sid, "account_sid": parts[2], "phone_number": number}] if held else []
                    self._answer(
                        200,
                        {"incoming_phone_numbers": found, "page": 0, "page_size": 50, "next_page_uri": None},
                    )
                else:
                    self._not_found()

            def _unauthenticated(self, parts: list[str], password: str) -> bool:
                expected = fake.credentials.get(parts[2]) if len(parts) > 2 else None
                if expected is None or expected == password:
                    return False
                self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return True

            def _not_found(self) -> None:
                self._answer(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @staticmethod
    def call_resource(account_sid: str, call_sid: str, form: dict[str, str], *, status: str) -> dict:
        return {
            "sid": call_sid,
            "account_sid": account_sid,
            "to": form.get("To", ""),
            "from": form.get("From", ""),
            "status": status,
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json",
        }

    @staticmethod
    def end_stream(call_sid: str) -> None:
        """Twilio leaves a call's ``<Connect><Stream>`` when the call gets new TwiML: ``stop``, then close."""
        live = LIVE_STREAMS.pop(call_sid, None)
        if live is None:
            return
        loop, call = live
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(call.hang_up(), loop).result(timeout=10)

    def own(self, number: str, account_sid: str) -> None:
        """``account_sid`` holds ``number`` (bought it in Twilio's console)."""
        self.owners[number] = account_sid

    def calls_to(self, call_sid: str) -> list[RestRequest]:
        return [r for r in self.requests if f"/Calls/{call_sid}.json" in r.path]

    def recordings_of(self, call_sid: str) -> list[RestRequest]:
        return [r for r in self.requests if f"/Calls/{call_sid}/Recordings.json" in r.path]

    def __enter__(self) -> FakeTwilioRest:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
