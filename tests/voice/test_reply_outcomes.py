"""What becomes of a reply, told truthfully: to the client (events) and in the stored turn (delivery).

A fake transport and recorder: the session's own rules, in milliseconds."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Sequence

import pytest

from tests.voice.test_session_timers import FAST, FakeRecorder, FakeTransport, _until
from tests.voice.test_session_timers import _session as timers_session
from voice.protocol import CloseCode
from voice.providers.base import (
    ChatEvent,
    ChatMessage,
    ChatModel,
    ErrorKind,
    ProviderError,
    TextDelta,
    TextToSpeech,
    ToolSpec,
    Usage,
)
from voice.providers.simulated import SimulatedSpeech
from voice.session import VoiceSession


class BrokenVoice(TextToSpeech):
    """A voice whose audio the pipeline cannot take: what espeak-ng's 22,050 Hz did to every reply."""

    provider, model, sample_rate = "simulated", "simulated-tts", 24000

    async def synthesize(self, text: str, *, voice: str, speed: float, style: str = "") -> AsyncIterator[bytes]:
        raise ValueError("unsupported input rate 22050 Hz")
        yield b""  # pragma: no cover - an async generator


class FailingChat(ChatModel):
    """Says ``said`` (maybe nothing), then the provider fails."""

    provider, model = "openai", "gpt-test"

    def __init__(self, said: str = "") -> None:
        self.said = said

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        if self.said:
            yield TextDelta(self.said)
            await asyncio.sleep(0.05)
        raise ProviderError(ErrorKind.UNAVAILABLE, "500 Internal Server Error")
        yield Usage(0, 0)  # pragma: no cover


class HeardRecorder(FakeRecorder):
    """Also keeps the updates of what was heard."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[dict] = []

    def heard(self, turn_id, **kwargs) -> None:
        self.updates.append(kwargs)


def _session(*, chat: ChatModel | None = None, tts: TextToSpeech | None = None):
    return timers_session(600, speech_speed=1.0, chat=chat, tts=tts, recorder=HeardRecorder())


def _of(transport: FakeTransport, kind: str, **fields) -> list[dict]:
    return [e for e in transport.events if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())]


def _codes(transport: FakeTransport) -> list[str]:
    return [e["code"] for e in transport.events if e["type"] == "error"]


async def _say(session: VoiceSession, text: str) -> None:
    await session.handle_text(json.dumps({"type": "input.text", "text": text}))


async def test_a_voice_that_breaks_gives_speech_failed_and_the_reply_as_text_never_reply_failed():
    # given a voice session whose voice cannot speak
    session, transport, recorder = _session(tts=BrokenVoice())
    await session.handle_text('{"type": "session.start", "sample_rate": 16000}')

    # when the visitor asks something
    await _say(session, "What are your opening hours?")
    done = (await _until(lambda: _of(transport, "response.done")))[0]

    # then the failure is named for what failed, and the reply arrives whole as text
    assert _codes(transport) == ["speech_failed"]
    assert done["status"] == "completed" and "open" in done["text"]
    assert "".join(e["delta"] for e in _of(transport, "response.text.delta")) == done["text"]
    assert transport.audio_frames == 0
    # and the stored turn says it went out as text only (the widget shows it: that is what reached the visitor)
    (turn,) = [t for t in recorder.turns if t.role == "assistant"]
    assert (turn.delivery, turn.text, turn.heard_text) == ("speech_failed", done["text"], done["text"])
    await session.end("visitor_ended", CloseCode.NORMAL)


@pytest.mark.parametrize("said", ["", "We open at nine and "])
async def test_a_failed_language_model_is_stored_as_a_failed_reply(said):
    session, transport, recorder = _session(chat=FailingChat(said))
    await session.handle_text('{"type": "session.start", "text_only": true}')

    await _say(session, "When do you open?")
    done = (await _until(lambda: _of(transport, "response.done")))[0]

    assert _codes(transport) == ["reply_failed"] and done["status"] == "failed"
    await _until(lambda: len(recorder.turns) == 2)
    turn = recorder.turns[1]
    assert (turn.role, turn.delivery, turn.text) == ("assistant", "reply_failed", said)
    assert session.history[-1].role == ("assistant" if said else "user"), "nothing unsaid joins the history"
    await session.end("visitor_ended", CloseCode.NORMAL)


async def test_a_cut_reply_ends_with_response_done_interrupted_and_heard_is_sent_once_per_change():
    # given a reply playing in real time (about 4 s of speech)
    session, transport, recorder = _session()
    await session.handle_text('{"type": "session.start", "sample_rate": 16000}')
    await _say(session, "hello")
    started = (await _until(lambda: _of(transport, "response.started")))[0]
    reply_id = started["response_id"]
    await _until(lambda: transport.audio_frames > 0)
    await asyncio.sleep(1.2)

    # when the visitor stops it
    await session.handle_text('{"type": "response.cancel"}')

    # then: interrupted, what was heard, and a terminal response.done with status "interrupted", in that order
    kinds = [e["type"] for e in transport.events if e.get("response_id") == reply_id]
    assert kinds[-3:] == ["response.interrupted", "response.heard", "response.done"], kinds
    done = _of(transport, "response.done", response_id=reply_id)[0]
    heard = _of(transport, "response.heard", response_id=reply_id)[0]
    assert done["status"] == "interrupted" and done["reason"] == "cancelled"
    assert done["text"].startswith(heard["text"]) and heard["text"] and heard["text"] != done["text"]
    assert done["metrics"]["audio_ms"] > 0
    (turn,) = [t for t in recorder.turns if t.role == "assistant"]
    assert (turn.delivery, turn.heard_text, turn.interrupted) == ("interrupted", heard["text"], True)

    # when the client reports the same point the server estimated: nothing changed, nothing is repeated
    await session.handle_text(
        json.dumps({"type": "response.played", "response_id": reply_id, "played_ms": heard["played_ms"]})
    )
    await asyncio.sleep(0.05)
    assert len(_of(transport, "response.heard", response_id=reply_id)) == 1

    # when it reports that nothing had played yet: the heard text changes, and is sent again
    await session.handle_text(json.dumps({"type": "response.played", "response_id": reply_id, "played_ms": 0}))
    again = (await _until(lambda: _of(transport, "response.heard", response_id=reply_id)[1:]))[0]
    assert again["text"] == ""
    assert recorder.updates[-1]["delivery"] == "unheard" and recorder.updates[-1]["heard_text"] == ""
    assert session.history[-1].content == ""
    await session.end("visitor_ended", CloseCode.NORMAL)


async def test_a_reply_cut_before_it_was_heard_is_stored_as_unheard():
    session, transport, recorder = _session()
    await session.handle_text('{"type": "session.start", "sample_rate": 16000}')
    await _say(session, "hello")
    await _until(lambda: _of(transport, "response.started"))

    await _say(session, "Actually, do you deliver?")  # before the first reply made a sound

    first = (await _until(lambda: [t for t in recorder.turns if t.role == "assistant"]))[0]
    assert (first.delivery, first.heard_text) == ("unheard", "")
    assert _of(transport, "response.done", response_id=1)[0]["status"] == "interrupted"
    await _until(lambda: _of(transport, "response.done", response_id=2))
    await session.end("visitor_ended", CloseCode.NORMAL)


@pytest.mark.parametrize(
    ("start", "espeak", "expected"),
    [
        ({"sample_rate": 16000}, False, "tone"),
        ({"sample_rate": 16000}, True, "espeak"),
        ({"text_only": True, "sample_rate": None}, True, None),  # nothing is spoken
    ],
)
async def test_session_created_says_which_speech_output_the_visitor_hears(start, espeak, expected):
    if espeak and not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    session, transport, _ = _session(tts=SimulatedSpeech(FAST, use_espeak=espeak))

    await session.handle_text(json.dumps({"type": "session.start", **start}))

    created = _of(transport, "session.created")[0]
    assert created["speech_output"] == expected
    await session.end("visitor_ended", CloseCode.NORMAL)
