"""The phone stream's audio path: Twilio's 20 ms messages heard in pairs, each counted once."""

from __future__ import annotations

from telephony.consumers import TwilioMediaConsumer
from voice.audio.mulaw import ulaw_to_pcm


class _CountingSession:
    def __init__(self, admit_first: int) -> None:
        self.admitted = 0
        self.admit_first = admit_first
        self.heard: list[bytes] = []

    async def admit(self) -> bool:
        self.admitted += 1
        return self.admitted <= self.admit_first

    async def handle_audio(self, pcm: bytes) -> None:
        if await self.admit():  # as VoiceSession.handle_audio counts the message that completes a pair
            self.heard.append(pcm)


async def test_every_phone_message_counts_once_against_the_flood_limit_and_a_refused_one_is_not_heard() -> None:
    consumer = TwilioMediaConsumer()
    session = _CountingSession(admit_first=9)
    for index in range(12):
        await consumer._hear(session, bytes([index]) * 160)

    assert session.admitted == 12  # one count per message, whether held or heard
    assert [len(pcm) for pcm in session.heard] == [640] * 4  # 8 messages heard in pairs
    # message 9 was admitted and held; 10 (its pair) was refused; 11 was refused while held; 12 refused
    assert ulaw_to_pcm(bytes([8]) * 160) not in b"".join(session.heard)


async def test_media_of_another_track_is_not_heard_but_counts_against_the_flood_limit() -> None:
    import base64
    import json

    consumer = TwilioMediaConsumer()
    session = _CountingSession(admit_first=1000)
    consumer.session = session  # type: ignore[assignment]
    payload = base64.b64encode(b"\xff" * 160).decode()
    message = json.dumps({"event": "media", "media": {"track": "outbound", "payload": payload}})

    for _ in range(10):
        await consumer.receive(text_data=message)

    assert session.admitted == 10
    assert session.heard == []
