"""Call an assistant on this machine without Twilio (development only; docs/telephony.md, "Call your
assistant locally").

It plays Twilio's part against the real platform: a development number whose ownership nobody checks
(``do_connect_development_number``, refused unless ``AURA_ENV=development``), the voice webhook signed
with that number's own auth token, the TwiML's ``<Connect><Stream>``, and the Media Streams socket
(``connected``, ``start`` with the token, 20 ms ``media`` of 8 kHz µ-law in real time, ``mark`` echoed
once the audio before it has played, ``stop``). Everything after the webhook is the code a real call runs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import wave
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr
from django.conf import settings

from telephony.actions import seal_auth_token
from telephony.models import PhoneNumber
from telephony.queries import WEBHOOK_PATH
from tenants.models import Organization
from voice.audio.mulaw import pcm_to_ulaw, ulaw_to_pcm
from voice.audio.phone import PHONE_FRAME_BYTES, PHONE_RATE

CALLER = "+15005550006"  # Twilio's own test number: never a real subscriber


class NotInDevelopmentError(RuntimeError):
    pass


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 of the URL and the sorted POST parameters, keyed with the auth token."""
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def development_number_of(organization: Organization) -> str:
    return f"+1555{organization.pk:07d}"  # 555 numbers are reserved for fiction


def do_connect_development_number(organization: Organization, *, assistant_id: int) -> tuple[PhoneNumber, str]:
    """The organization's development number, answered by the assistant, on an account of its own with a
    new auth token (returned: the caller signs with it). Only in development: nothing asks Twilio whether
    anyone holds the number."""
    if settings.AURA_ENV != "development":
        raise NotInDevelopmentError("Local calls exist only in development (AURA_ENV=development).")
    account_sid = "AC" + hashlib.sha256(f"aura-dev-{organization.pk}".encode()).hexdigest()[:32]
    number, _ = PhoneNumber.objects.get_or_create(
        number=development_number_of(organization),
        defaults={"organization": organization, "assistant_id": assistant_id, "account_sid": account_sid},
    )
    if number.organization_id != organization.pk:
        raise NotInDevelopmentError(f"{number.number} belongs to another organization.")
    auth_token = secrets.token_hex(16)
    seal_auth_token(number, auth_token)
    number.assistant_id, number.account_sid, number.is_active = assistant_id, account_sid, True
    number.save()
    return number, auth_token


def ring(platform_url: str, number: PhoneNumber, auth_token: str) -> tuple[str, dict[str, str], str]:
    """Twilio's voice webhook for a call to the number: (stream URL, stream parameters, call SID)."""
    call_sid = "CA" + uuid.uuid4().hex
    url = platform_url + WEBHOOK_PATH
    params = {
        "AccountSid": number.account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": number.number,
        "Caller": CALLER,
        "Direction": "inbound",
        "From": CALLER,
        "To": number.number,
    }
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": twilio_signature(auth_token, url, params)},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            twiml = response.read().decode()
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"the voice webhook answered {error.code}: {error.read().decode()[:200]}") from error
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    if stream is None:
        said = " ".join(say.text or "" for say in ET.fromstring(twiml).iter("Say"))
        raise RuntimeError(f"the platform did not connect the call: {said or twiml}")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), parameters, call_sid


def caller_audio(path: Path) -> bytes:
    """A WAV file (any rate, mono or stereo 16-bit) as a phone line carries it: 8 kHz µ-law."""
    with wave.open(str(path)) as reader:
        if reader.getsampwidth() != 2:
            raise ValueError(f"{path}: 16-bit PCM WAV expected")
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
        if reader.getnchannels() == 2:
            pcm = pcm.reshape(-1, 2).mean(axis=1).astype("<i2")
        rate = reader.getframerate()
    return pcm_to_ulaw(soxr.resample(pcm, rate, PHONE_RATE).astype("<i2").tobytes())


@dataclass
class CallRecord:
    heard: bytearray = field(default_factory=bytearray)  # what the caller heard, 8 kHz µ-law
    close_code: int | None = None


async def call(
    stream_url: str, parameters: dict[str, str], call_sid: str, speech: bytes, *, max_s: float
) -> CallRecord:
    """The media stream: greeting heard, the caller's speech sent, the reply heard, then hang up."""
    import websockets  # a development dependency (requirements/dev.txt), like this whole module's use

    record, stream_sid, sequence = CallRecord(), "MZ" + uuid.uuid4().hex, 0
    echoes: set[asyncio.Task[None]] = set()
    playing_until = 0.0  # when the audio received so far has played (the caller's "speaker")
    last_audio = time.monotonic()
    started = time.monotonic()
    async with websockets.connect(stream_url, open_timeout=10) as ws:

        async def send(message: dict[str, object]) -> None:
            nonlocal sequence
            sequence += 1
            await ws.send(json.dumps({**message, "sequenceNumber": str(sequence)}))

        async def echo_mark(name: str, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            await send({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})

        async def listen() -> None:
            nonlocal playing_until, last_audio
            async for raw in ws:
                message = json.loads(raw)
                now = time.monotonic()
                if message.get("event") == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    record.heard += audio
                    playing_until = max(playing_until, now) + len(audio) / PHONE_RATE
                    last_audio = now
                elif message.get("event") == "mark":
                    echo = asyncio.create_task(echo_mark(message["mark"]["name"], playing_until))
                    echoes.add(echo)
                    echo.add_done_callback(echoes.discard)
                elif message.get("event") == "clear":
                    playing_until = now

        async def answered_then_quiet(seconds: float, *, first_audio_within_s: float = 6.0) -> None:
            """Until audio came and then nothing more came and all of it played for ``seconds`` (or time is up)."""
            heard_before, asked = len(record.heard), time.monotonic()
            while time.monotonic() - started < max_s:
                now = time.monotonic()
                if len(record.heard) == heard_before:
                    if now - asked > first_audio_within_s:
                        return
                elif now - max(last_audio, playing_until) > seconds:
                    return
                await asyncio.sleep(0.1)

        reader = asyncio.create_task(listen())
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await send(
            {
                "event": "start",
                "streamSid": stream_sid,
                "start": {
                    "streamSid": stream_sid,
                    "callSid": call_sid,
                    "accountSid": "",
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": PHONE_RATE, "channels": 1},
                    "customParameters": parameters,
                },
            }
        )
        await answered_then_quiet(1.0)  # the greeting
        silence = b"\xff" * PHONE_RATE  # a second after the words, so the turn ends
        begin = time.monotonic()
        for offset in range(0, len(speech + silence), PHONE_FRAME_BYTES):
            frame = (speech + silence)[offset : offset + PHONE_FRAME_BYTES]
            await asyncio.sleep(max(0.0, begin + (offset + len(frame)) / PHONE_RATE - time.monotonic()))
            media = {
                "track": "inbound",
                "chunk": str(offset // PHONE_FRAME_BYTES + 1),
                "timestamp": str(offset // 8),
                "payload": base64.b64encode(frame).decode(),
            }
            await send({"event": "media", "streamSid": stream_sid, "media": media})
        await answered_then_quiet(1.0)  # the reply
        await send({"event": "stop", "streamSid": stream_sid, "stop": {"callSid": call_sid}})
        await asyncio.sleep(0.5)
        reader.cancel()
        for echo in echoes:
            echo.cancel()
        record.close_code = ws.close_code
    return record


def write_wav(path: Path, ulaw: bytes) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(PHONE_RATE)
        writer.writeframes(ulaw_to_pcm(ulaw))
