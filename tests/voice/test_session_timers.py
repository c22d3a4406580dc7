"""Session rules with a fake transport: idle timeout and reminder, maximum length, greeting, echo."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from conversations.actions import TurnRecord
from voice.audio.vad import TurnConfig
from voice.parts.timers import IDLE_REMINDER
from voice.protocol import CloseCode
from voice.providers.registry import RoutingConfig, SessionProviders
from voice.providers.simulated import SimulatedChat, SimulatedLatency, SimulatedSpeech, SimulatedSpeechToText
from voice.queries import AssistantSnapshot
from voice.session import VoiceSession

FAST = SimulatedLatency(
    stt_ms=1, llm_first_token_ms=1, llm_tokens_per_s=1000, tts_first_byte_ms=1, tts_realtime_factor=1000
)


class FakeTransport:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.audio_frames = 0
        self.closed_with: int | None = None

    async def send_event(self, event: dict) -> None:
        self.events.append(event)

    async def send_audio(self, frame: bytes) -> None:
        self.audio_frames += 1

    async def close(self, code: int) -> None:
        self.closed_with = code


class FakeRecorder:
    """Keeps what would be stored, in order."""

    def __init__(self) -> None:
        self.turns: list[TurnRecord] = []
        self.ended: str | None = None
        self.tenant = SimpleNamespace(time_zone="UTC", business_hours={}, record_audio=False)

    def start(self, **kwargs) -> None:
        pass

    def turn(self, record: TurnRecord) -> asyncio.Future:
        self.turns.append(record)
        future = asyncio.get_running_loop().create_future()
        future.set_result(len(self.turns))
        return future

    def heard(self, turn_id, **kwargs) -> None:
        pass

    def call(self, fn, /, **kwargs) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def end(self, reason: str) -> None:
        self.ended = reason

    async def close(self) -> None:
        pass


def _session(
    idle_timeout_s: int = 1,
    max_session_s: int = 600,
    greeting: str = "",
    tools: tuple[str, ...] = (),
    *,
    speech_speed: float = 4.0,
    chat: object = None,
    tts: object = None,
    stt: object = None,
    recorder: FakeRecorder | None = None,
    **assistant: object,
) -> tuple[VoiceSession, FakeTransport, FakeRecorder]:
    """A session on simulated providers (or the ``chat`` / ``tts`` / ``stt`` given) with fakes for transport and
    recorder; ``assistant``: settings of the AssistantSnapshot."""
    snapshot = {
        "id": 1,
        "name": "Test",
        "instructions": "Be brief.",
        "greeting": greeting,
        "language": "en",
        "voice": "alloy",
        "speech_speed": speech_speed,
        "turn": TurnConfig(),
        "idle_timeout_s": idle_timeout_s,
        "max_session_s": max_session_s,
        "routing": RoutingConfig(llm=(), stt=(), tts=()),
        "tools": tools,
    }
    assistant_snapshot = AssistantSnapshot(**{**snapshot, **assistant})  # type: ignore[arg-type]
    providers = SessionProviders(
        stt=stt or SimulatedSpeechToText(FAST),
        chat=chat or SimulatedChat(FAST),
        tts=tts or SimulatedSpeech(FAST, use_espeak=False),
    )
    transport, recorder = FakeTransport(), recorder or FakeRecorder()
    session = VoiceSession(
        conversation_id="c1",
        visitor_id="",
        origin="https://shop.example",
        assistant=assistant_snapshot,
        providers=providers,
        transport=transport,
        recorder=recorder,
    )
    return session, transport, recorder


async def _until(predicate, timeout: float = 10.0):
    """Wait until ``predicate()`` is truthy; returns what it returned."""
    async with asyncio.timeout(timeout):
        while not (found := predicate()):
            await asyncio.sleep(0.02)
    return found


async def test_an_idle_visitor_is_reminded_once_then_the_session_ends():
    session, transport, recorder = _session(idle_timeout_s=1)
    await session.handle_text('{"type": "session.start", "text_only": true}')

    await _until(lambda: transport.closed_with is not None)

    texts = [e["text"] for e in transport.events if e["type"] == "response.done"]
    assert texts == [IDLE_REMINDER]
    assert transport.events[-1] == {"type": "session.ended", "reason": "idle_timeout"}
    assert transport.closed_with == CloseCode.IDLE_TIMEOUT
    assert recorder.ended == "idle_timeout"
    assert [t.text for t in recorder.turns] == [IDLE_REMINDER]


async def test_activity_resets_the_idle_clock():
    session, transport, _ = _session(idle_timeout_s=2)
    await session.handle_text('{"type": "session.start", "text_only": true}')
    for _ in range(3):
        await asyncio.sleep(1.2)
        await session.handle_text('{"type": "input.text", "text": "hello"}')

    assert transport.closed_with is None
    assert not any(e.get("text") == IDLE_REMINDER for e in transport.events if e["type"] == "response.done")
    await session.end("visitor_ended", CloseCode.NORMAL)


async def test_the_maximum_length_ends_an_idle_session():
    session, transport, recorder = _session(idle_timeout_s=60, max_session_s=1)
    await session.handle_text('{"type": "session.start", "text_only": true}')

    await _until(lambda: transport.closed_with is not None)

    assert transport.closed_with == CloseCode.MAX_DURATION
    assert recorder.ended == "max_duration"


async def test_the_greeting_is_spoken_first_with_audio():
    session, transport, recorder = _session(greeting="Welcome to the shop.")
    await session.handle_text('{"type": "session.start", "sample_rate": 16000}')

    await _until(lambda: any(e["type"] == "response.done" for e in transport.events))

    assert transport.events[0]["type"] == "session.created"
    assert transport.events[1] == {"type": "response.started", "response_id": 1}
    assert transport.audio_frames > 0
    assert recorder.turns[0].text == "Welcome to the shop."
    await session.end("visitor_ended", CloseCode.NORMAL)


@pytest.mark.parametrize(("echo", "barge_in_min_ms"), [("browser", 250), ("loopback", 250), ("none", 600)])
async def test_without_echo_cancellation_barging_in_takes_more_speech(echo, barge_in_min_ms):
    session, _, _ = _session()
    await session.handle_text(f'{{"type": "session.start", "sample_rate": 16000, "echo_cancellation": "{echo}"}}')

    assert session.turns.input.detector.config.barge_in_min_ms == barge_in_min_ms
    await session.end("visitor_ended", CloseCode.NORMAL)


@pytest.mark.parametrize("interrupted", [False, True])
async def test_the_assistant_ends_after_its_goodbye_unless_the_visitor_cuts_it_short(interrupted):
    session, transport, recorder = _session(idle_timeout_s=60, tools=("end_conversation",))
    await session.handle_text('{"type": "session.start", "sample_rate": 16000}')
    await session.handle_text('{"type": "input.text", "text": "goodbye"}')
    await _until(lambda: any(e["type"] == "response.done" for e in transport.events))
    assert session.ending.task is not None and session.replies.audible(), "the goodbye is still playing"

    if interrupted:
        await session.interrupt("barge_in")
    await asyncio.sleep(1.5)

    if interrupted:
        assert transport.closed_with is None and recorder.ended is None
        await session.end("visitor_ended", CloseCode.NORMAL)
    else:
        assert transport.closed_with == CloseCode.NORMAL and recorder.ended == "assistant_ended"
