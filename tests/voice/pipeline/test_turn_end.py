"""The semantic end-of-turn stage: a speculative transcript per pause, reused when the turn ends there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tests.voice.audio.test_vad import narrowband, silence, speech_only
from voice.audio.frames import NARROWBAND_RATE, frame_bytes
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
        self.rates: list[int] = []

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        self.requests += 1
        self.rates.append(sample_rate)
        answer = self.answers.pop(0)
        await asyncio.sleep(0)
        if isinstance(answer, ProviderError):
            raise answer
        yield Transcript(text=answer, final=True)


async def _feed(stage: TurnEnd, detector: TurnDetector, pcm: bytes) -> list[TurnEvent]:
    """Frames in real order, letting the stage's tasks run between frames as the event loop would."""
    events = []
    size = frame_bytes(detector.sample_rate)
    for offset in range(0, len(pcm) - size + 1, size):
        event = detector.process(pcm[offset : offset + size])
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


async def test_the_audio_of_every_speculation_is_counted_for_the_turn_dropped_ones_included():
    """Review 16, finding 4: each pause sends the whole utterance so far to speech-to-text; a provider
    bills each request, so the turn's speech-to-text seconds are the audio of all of them."""
    detector = TurnDetector(CONFIG)
    stt = ScriptedSpeechToText("my name is", "my name is anna smith")
    stage = TurnEnd(stt, detector, CONFIG, language="en")

    events = await _feed(stage, detector, silence(500) + speech_only("hours") + silence(1200))
    events += await _feed(stage, detector, speech_only("booking") + silence(700))
    pauses = [e for e in events if isinstance(e, SpeechPaused)]
    assert len(pauses) == 2  # the first speculation was dropped when the visitor went on
    stopped = next(e for e in events if isinstance(e, SpeechStopped))
    await TurnEnd.result(stage.take(stopped))
    spent = stage.spent()
    assert (spent.requests, spent.audio_ms) == (2, sum(len(p.utterance) // 32 for p in pauses))
    assert spent.verdict == "incomplete"  # the dropped one's verdict ("my name is")
    assert stage.spent().requests == 0  # counted once: the next turn starts from nothing


async def test_on_a_phone_speculations_send_and_count_the_lines_own_8_khz():
    detector = TurnDetector(CONFIG, sample_rate=NARROWBAND_RATE)
    stt = ScriptedSpeechToText("what are your opening hours")
    stage = TurnEnd(stt, detector, CONFIG, language="en")

    events = await _feed(stage, detector, narrowband(silence(500) + speech_only("hours") + silence(1200)))
    [paused] = [e for e in events if isinstance(e, SpeechPaused)]
    stopped = next(e for e in events if isinstance(e, SpeechStopped))
    assert (await TurnEnd.result(stage.take(stopped))).text == "what are your opening hours"
    assert stt.rates == [NARROWBAND_RATE]
    assert stage.spent().audio_ms == len(paused.utterance) // 16  # 16 bytes a millisecond at 8 kHz


async def test_speculations_per_turn_are_capped_then_the_usual_silence_applies():
    detector = TurnDetector(CONFIG)
    stt = ScriptedSpeechToText(*["i'd like um"] * 10)  # sounds unfinished at every pause
    stage = TurnEnd(stt, detector, CONFIG, language="en")
    from voice.pipeline.turn_end import MAX_SPECULATIONS_PER_TURN

    events = await _feed(stage, detector, silence(500) + speech_only("hours"))
    for _ in range(MAX_SPECULATIONS_PER_TURN + 1):
        events += await _feed(stage, detector, silence(400) + speech_only("booking")[: 32 * 300])
    assert stt.requests == MAX_SPECULATIONS_PER_TURN
    # the pause past the cap gets no verdict: the usual end silence, not the 2 s wait of "unfinished"
    events += await _feed(stage, detector, silence(CONFIG.end_silence_ms + 40))
    assert any(isinstance(e, SpeechStopped) for e in events)


def test_a_fresh_transcript_after_a_failed_speculation_is_recorded_as_such():
    """Review 16, finding 9: a turn transcribed afresh stored no verdict, so `speculative: true` was the only
    value a test could see. Now the route says what happened, and counts every request and its audio."""
    from voice.parts.turns import visitor_route as _visitor_route
    from voice.pipeline.turn_end import Heard, Spent

    fresh = _visitor_route(Heard(text="my name is anna"), Spent(requests=1, audio_ms=900, verdict=""), 2400)
    assert fresh["turn_end"] == {"verdict": "none", "speculative": False, "stt_requests": 2}
    assert fresh["stt_audio_ms"] == 3300

    reused = _visitor_route(
        Heard(text="yes", verdict="complete", speculative=True),
        Spent(requests=2, audio_ms=1500, verdict="incomplete"),
        0,
    )
    assert reused["turn_end"] == {"verdict": "complete", "speculative": True, "stt_requests": 2}
    assert reused["stt_audio_ms"] == 1500

    fixed = _visitor_route(Heard(text="hello"), None, 1200)  # semantic end of turn off
    assert "turn_end" not in fixed and fixed["stt_audio_ms"] == 1200
