"""A turn's transcription at the session's hearing rate: what reaches speech-to-text, and what is billed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from voice.pipeline.transcription import TurnTranscription
from voice.providers.base import SpeechToText, Transcript, TranscriptionStream
from voice.providers.simulated import SimulatedLatency, SimulatedSpeechToText

LINE_SECOND = b"\x01\x00" * 8000  # one second of a phone's 8 kHz


class RecordingSpeechToText(SpeechToText):
    """Batch only; records the rate of every request."""

    provider, model = "recording", "recording"

    def __init__(self) -> None:
        self.rates: list[int] = []

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        self.rates.append(sample_rate)
        yield Transcript(text=f"{len(pcm) / 2 / sample_rate:.1f} s", final=True)

    def open_stream(self, *, language: str, sample_rate: int = 16000) -> TranscriptionStream | None:
        self.rates.append(sample_rate)
        return None


async def test_a_phone_turn_is_sent_and_billed_at_8_khz() -> None:
    stt = RecordingSpeechToText()
    turn = await TurnTranscription.begin(stt, language="en", pre_roll=LINE_SECOND[:4800], sample_rate=8000)
    text, _, billed_ms = await turn.heard(LINE_SECOND * 2, ended_at=100)
    assert (text, billed_ms) == ("2.0 s", 2000)  # two seconds, heard and billed as two
    assert stt.rates == [8000, 8000]  # the stream was asked for at 8 kHz, then the request made at it


async def test_a_streamed_phone_turn_bills_the_seconds_it_streamed() -> None:
    stt = SimulatedSpeechToText(SimulatedLatency(stt_stream_ms=1, stt_streams=True))
    turn = await TurnTranscription.begin(stt, language="en", pre_roll=LINE_SECOND, sample_rate=8000)
    await turn.feed_more(LINE_SECOND[:8000])
    text, _, fresh_ms = await turn.heard(LINE_SECOND + LINE_SECOND[:8000], ended_at=75)
    assert text == "(simulated transcript of 1.5 seconds of speech)"
    assert (fresh_ms, await turn.ended()) == (0, 1500)
