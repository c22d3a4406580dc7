"""Finding 8: a caller who hangs up while a reply is still queued at Twilio heard only what the marks say,
not the whole reply (the session's pacing estimate knows nothing of Twilio's buffer)."""

from __future__ import annotations

import asyncio

from conversations.models import EndReason
from telephony.transport import TwilioTransport
from tests.telephony.test_media_streams import Wire
from tests.voice.test_session_timers import FAST, FakeRecorder
from voice.audio.phone import PHONE_RATE
from voice.audio.vad import TurnConfig
from voice.protocol import CloseCode, SessionStart
from voice.providers.registry import RoutingConfig, SessionProviders
from voice.providers.simulated import SimulatedChat, SimulatedSpeech, SimulatedSpeechToText
from voice.queries import AssistantSnapshot
from voice.session import VoiceSession

GREETING = "Hello, thank you for calling Alpha. How can I help you today?"


class HeardRecorder(FakeRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.corrections: list[dict] = []

    def heard(self, turn_id, **kwargs) -> None:
        self.corrections.append({"turn_id": turn_id, **kwargs})


def phone_session() -> tuple[VoiceSession, Wire, HeardRecorder]:
    assistant = AssistantSnapshot(
        id=1,
        name="Test",
        instructions="Be brief.",
        greeting=GREETING,
        language="en",
        voice="alloy",
        speech_speed=4.0,
        turn=TurnConfig(),
        idle_timeout_s=60,
        max_session_s=600,
        routing=RoutingConfig(llm=(), stt=(), tts=()),
    )
    providers = SessionProviders(
        stt=SimulatedSpeechToText(FAST), chat=SimulatedChat(FAST), tts=SimulatedSpeech(FAST, use_espeak=False)
    )
    wire, recorder = Wire(), HeardRecorder()
    transport = TwilioTransport("MZ1", send_text=wire.send_text, close=wire.close)
    session = VoiceSession(
        conversation_id="c1",
        visitor_id="",
        origin="+14155550100",
        assistant=assistant,
        providers=providers,
        transport=transport,
        recorder=recorder,
    )
    transport.on_played = session.played
    return session, wire, recorder


async def test_a_hang_up_with_the_reply_still_queued_at_twilio_keeps_only_what_the_marks_say_was_heard():
    session, wire, recorder = phone_session()
    await session.start(SessionStart(sample_rate=PHONE_RATE, visitor_id="", text_only=False))
    async with asyncio.timeout(20):  # the greeting was produced to its end and stored
        while not recorder.turns:
            await asyncio.sleep(0.02)
    (greeting,) = recorder.turns
    marks = [float(m["mark"]["name"].split(":")[1]) for m in wire.of("mark")]
    assert greeting.text == GREETING and len(marks) > 1
    first = wire.of("mark")[0]["mark"]["name"]

    # Twilio played the first chunk only; then the caller hangs up (stop), the rest still in its buffer
    session.transport.mark_heard(first)
    await session.end(EndReason.VISITOR_ENDED, CloseCode.NORMAL, notify=False)

    (correction,) = recorder.corrections
    assert correction["turn_id"].result() == 1 and correction["interrupted"]
    assert marks[0] <= correction["played_ms"] <= marks[1] < marks[-1]
    assert correction["heard_text"] != GREETING and GREETING.startswith(correction["heard_text"])
