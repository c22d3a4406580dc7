"""The semantic end-of-turn stage: a speculative transcript per pause, reused when the turn ends there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tests.voice.audio.test_vad import silence, speech_only
from voice.audio.frames import FRAME_BYTES
from voice.audio.vad import SpeechPaused, SpeechStopped, TurnConfig, TurnDetector, TurnEvent
from voice.pipeline.turn_end import TurnEnd
from voice.providers.base import ErrorKind, ProviderError, SpeechToText, Transcript

CONFIG = TurnConfig(semantic=True, min_silence_ms=300, end_silence_ms=600, max_silence_ms=2000)


class ScriptedSpeechToText(SpeechToText):
    """Answers each request with the next scripted text (or error) and counts the requests (each is billed)."""

    provider, model = "scripted", "scripted"

    def __init__(self, *answers: str | ProviderError) -> None:
        self.answers = list(answers)
        self.requests = 0

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        self.requests += 1
        answer = self.answers.pop(0)
        await asyncio.sleep(0)
        if isinstance(answer, ProviderError):
            raise answer
        yield Transcript(text=answer, final=True)


async def _feed(stage: TurnEnd, detector: TurnDetector, pcm: bytes) -> list[TurnEvent]:
    """Frames in real order, letting the stage's tasks run between frames as the event loop would."""
    events = []
    for offset in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        event = detector.process(pcm[offset : offset + FRAME_BYTES])
        if isinstance(event, SpeechPaused):
            stage.paused(event)
        if event is not None:
            events.append(event)
        stage.check()
        await asyncio.sleep(0)
    return events


async def test_a_complete_answer_ends_the_turn_early_and_its_transcript_is_the_turns():
    detector, stt = TurnDetector(CONFIG), ScriptedSpeechToText("what are your opening hours on saturday")
    stage = TurnEnd(stt, detector, CONFIG, language="en")

    events = await _feed(stage, detector, silence(500) + speech_only("hours") + silence(700))
    stopped = next(e for e in events if isinstance(e, SpeechStopped))
    speech_end = 500 + len(speech_only("hours")) // 32
    assert stopped.frame_index * 20 - speech_end < CONFIG.end_silence_ms  # sooner than the fixed silence
    heard = await TurnEnd.result(stage.take(stopped))
    assert heard is not None and heard.text == "what are your opening hours on saturday"
    assert (heard.verdict, heard.speculative) == ("complete", True)
    assert stt.requests == 1  # one request for the turn: nothing transcribed twice


async def test_an_unfinished_sentence_waits_and_speech_after_the_pause_drops_the_speculation():
    detector = TurnDetector(CONFIG)
    stt = ScriptedSpeechToText("my name is", "my name is anna smith")
    stage = TurnEnd(stt, detector, CONFIG, language="en")

    events = await _feed(stage, detector, silence(500) + speech_only("hours") + silence(1200))
    assert not any(isinstance(e, SpeechStopped) for e in events)  # 1.2 s and still waiting
    events = await _feed(stage, detector, speech_only("booking") + silence(700))
    stopped = next(e for e in events if isinstance(e, SpeechStopped))
    heard = await TurnEnd.result(stage.take(stopped))
    assert heard is not None and heard.text == "my name is anna smith"  # the second pause's, not the first's
    assert stt.requests == 2


async def test_a_failed_speculation_falls_back_to_the_usual_silence_and_a_fresh_transcript():
    detector = TurnDetector(CONFIG)
    stt = ScriptedSpeechToText(ProviderError(ErrorKind.UNAVAILABLE, "down", provider="scripted"))
    stage = TurnEnd(stt, detector, CONFIG, language="en")

    events = await _feed(stage, detector, silence(500) + speech_only("hours") + silence(700))
    stopped = next(e for e in events if isinstance(e, SpeechStopped))
    speech_end = 500 + len(speech_only("hours")) // 32
    assert stopped.frame_index * 20 - speech_end >= CONFIG.end_silence_ms
    assert await TurnEnd.result(stage.take(stopped)) is None  # the session transcribes the turn itself
