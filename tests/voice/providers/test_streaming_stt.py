"""Streaming speech-to-text: the simulated stream, which candidate the router streams with, and how a
stream's commits feed the route log and the breakers like batch calls do."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from voice.providers.base import ErrorKind, ProviderError, SpeechToText, Transcript, TranscriptionStream
from voice.providers.local import LocalSpeechToText
from voice.providers.registry import RoutingConfig, providers_for
from voice.providers.simulated import SimulatedLatency, SimulatedSpeechToText
from voice.router.candidates import Candidate
from voice.router.health import ProviderHealth
from voice.router.routed import RoutedSpeechToText, RoutedTranscriptionStream, health_writes_settled

SECOND = b"\0\0" * 16000  # 1 s at 16 kHz


# --- the simulated stream ----------------------------------------------------------------------------


async def test_the_simulated_stream_answers_each_commit_for_the_audio_since_the_last() -> None:
    stream = SimulatedSpeechToText(SimulatedLatency(stt_stream_ms=5)).open_stream(language="en")
    await stream.append(SECOND)
    await stream.append(SECOND[:16000])  # half a second more
    first = await stream.commit()
    await stream.append(SECOND[: 32 * 700])
    second = await stream.commit()
    await stream.close()
    assert first == Transcript(text="(simulated transcript of 1.5 seconds of speech)", final=True)
    assert second.text == "(simulated transcript of 0.7 seconds of speech)"
    assert stream.appended_ms == 2200


async def test_the_simulated_stream_counts_a_phones_8_khz_as_the_seconds_they_are() -> None:
    stream = SimulatedSpeechToText(SimulatedLatency(stt_stream_ms=5)).open_stream(language="en", sample_rate=8000)
    assert stream is not None
    await stream.append(SECOND)  # 32,000 bytes: two seconds at 8 kHz
    assert stream.appended_ms == 2000
    assert (await stream.commit()).text == "(simulated transcript of 2.0 seconds of speech)"
    await stream.close()


async def test_a_closed_simulated_stream_refuses_commits_even_one_already_waiting() -> None:
    stream = SimulatedSpeechToText(SimulatedLatency(stt_stream_ms=10_000)).open_stream(language="en")
    await stream.append(SECOND)
    waiting = asyncio.create_task(stream.commit())
    await asyncio.sleep(0)
    await stream.close()
    await stream.close()
    with pytest.raises(ProviderError, match="closed"):
        await waiting
    await stream.append(SECOND)  # a no-op once closed
    with pytest.raises(ProviderError) as failed:
        await stream.commit()
    assert failed.value.kind == ErrorKind.UNAVAILABLE
    assert stream.appended_ms == 1000


async def test_the_simulated_stream_latency_comes_from_the_settings(settings) -> None:
    settings.AURA_SIMULATED_STT_STREAM_MS = 7
    stt = providers_for(RoutingConfig(llm=(), stt=(Candidate("simulated", "simulated-stt"),), tts=())).stt
    stream = stt.open_stream(language="en")
    assert isinstance(stream, RoutedTranscriptionStream)
    assert stream.stream.latency.stt_stream_ms == 7
    await stream.close()


# --- the router --------------------------------------------------------------------------------------


class ScriptedStream(TranscriptionStream):
    def __init__(self, behaviour: str) -> None:
        self.behaviour, self.appended_ms, self.closed = behaviour, 0, 0

    async def append(self, pcm: bytes) -> None:
        self.appended_ms += len(pcm) // 32

    async def commit(self) -> Transcript:
        if self.behaviour == "fail":
            raise ProviderError(ErrorKind.UNAVAILABLE, "error event: boom", provider="openai")
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        return Transcript(text=f"words from {self.behaviour}", final=True)

    async def close(self) -> None:
        self.closed += 1


class ScriptedSTT(SpeechToText):
    def __init__(self, behaviour: str, *, streams: bool = True) -> None:
        self.provider, self.model = "openai", f"{behaviour}-{uuid.uuid4().hex[:6]}"
        self.behaviour, self.streams, self.opened = behaviour, streams, 0
        self.rates: list[int] = []

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        yield Transcript(text="batch words", final=True)

    def open_stream(self, *, language: str, sample_rate: int = 16000) -> TranscriptionStream | None:
        if not self.streams:
            return None
        self.opened += 1
        self.rates.append(sample_rate)
        return ScriptedStream(self.behaviour)


def routed(*models: SpeechToText, bound_s: float = 1.0) -> tuple[RoutedSpeechToText, list[Candidate]]:
    candidates = [Candidate(m.provider, m.model) for m in models]
    health = ProviderHealth(failures_to_open=3, cooldown_s=30)
    # No background refresh from Redis during the test: one that overlaps a failure's shared write can
    # drop that failure from the local view (voice.router.health.refresh), which is not what is tested.
    health.refreshed_at = time.monotonic() + 3600
    return RoutedSpeechToText(list(zip(candidates, models, strict=True)), bound_s=bound_s, health=health), candidates


async def test_the_first_healthy_candidate_streams_and_its_commits_carry_their_route() -> None:
    primary, backup = ScriptedSTT("primary"), ScriptedSTT("backup")
    stt, candidates = routed(primary, backup)
    stream = stt.open_stream(language="en")
    assert stream is not None
    await stream.append(SECOND)
    transcript = await stream.commit()
    await stream.close()
    assert transcript.text == "words from primary" and transcript.final
    assert transcript.route is not None and transcript.route.chosen is not None
    assert transcript.route.as_dict()["chosen"] == candidates[0].key
    assert transcript.route.chosen.first_token_ms is not None
    assert stt.last_route is transcript.route
    assert stream.appended_ms == 1000
    assert (primary.opened, backup.opened) == (1, 0)


async def test_the_router_opens_its_candidates_stream_at_the_sessions_rate() -> None:
    primary = ScriptedSTT("primary")
    stt, _ = routed(primary)
    for rate in (8000, 16000):
        stream = stt.open_stream(language="en", sample_rate=rate)
        assert stream is not None
        await stream.close()
    assert primary.rates == [8000, 16000]


async def test_a_candidate_whose_breaker_is_open_is_passed_over() -> None:
    stt, candidates = routed(ScriptedSTT("primary"), ScriptedSTT("backup"))
    await stt.health.record_failure(candidates[0], "unavailable: down", hold_open_s=30)
    stream = stt.open_stream(language="en")
    assert stream is not None
    transcript = await stream.commit()
    await stream.close()
    assert transcript.text == "words from backup"
    assert [(a.model, a.outcome) for a in transcript.route.attempts] == [
        (candidates[0].model, "skipped"),
        (candidates[1].model, "ok"),
    ]


async def test_no_stream_when_the_first_healthy_candidate_does_not_stream() -> None:
    # Its batch transcription would serve the turn: a later candidate's stream must not speak for it.
    stt, _ = routed(ScriptedSTT("batch-only", streams=False), ScriptedSTT("streaming"))
    assert stt.open_stream(language="en") is None


async def test_a_failed_commit_feeds_the_breaker_and_carries_its_route() -> None:
    stt, candidates = routed(ScriptedSTT("fail"))
    stream = stt.open_stream(language="en")
    assert stream is not None
    with pytest.raises(ProviderError) as failed:
        await stream.commit()
    await health_writes_settled()
    await stream.close()
    assert failed.value.kind == ErrorKind.UNAVAILABLE
    assert failed.value.route is not None
    assert [a.outcome for a in failed.value.route.attempts] == ["unavailable"]
    assert stt.health.get(candidates[0]).failures == 1


async def test_one_broken_stream_is_one_failure_however_many_commits_were_waiting() -> None:
    # A turn commits at every short silence; when its one connection breaks, every waiting commit fails
    # with it. That is one failure of the provider, as one failed batch request is, not one per commit:
    # else a single dropped connection opens the breaker (shared with batch transcription) for everyone.
    stt, candidates = routed(ScriptedSTT("fail"))
    stream = stt.open_stream(language="en")
    assert stream is not None
    failed = await asyncio.gather(*(stream.commit() for _ in range(3)), return_exceptions=True)
    await health_writes_settled()
    await stream.close()
    assert all(isinstance(error, ProviderError) and error.route is not None for error in failed)
    assert stt.health.get(candidates[0]).failures == 1
    assert stt.health.state(candidates[0]) == "closed"


async def test_a_commit_past_the_bound_times_out_closes_the_stream_and_feeds_the_breaker() -> None:
    stt, candidates = routed(ScriptedSTT("hang"), bound_s=0.05)
    stream = stt.open_stream(language="en")
    assert isinstance(stream, RoutedTranscriptionStream)
    with pytest.raises(ProviderError) as failed:
        await stream.commit()
    await health_writes_settled()
    assert failed.value.kind == ErrorKind.TIMEOUT
    assert "no transcript within 50 ms" in str(failed.value)
    assert stream.stream.closed == 1
    assert stt.health.get(candidates[0]).failures == 1


async def test_three_failed_streams_open_the_breaker_and_the_next_turn_streams_elsewhere() -> None:
    stt, candidates = routed(ScriptedSTT("fail"), ScriptedSTT("backup"))
    for _ in range(3):
        stream = stt.open_stream(language="en")
        assert stream is not None
        with pytest.raises(ProviderError):
            await stream.commit()
        await stream.close()
        await health_writes_settled()  # turns are seconds apart: each failure is written before the next
    assert stt.health.state(candidates[0]) == "open"
    stream = stt.open_stream(language="en")
    assert stream is not None
    assert (await stream.commit()).text == "words from backup"


async def test_pocketsphinx_hears_a_phones_8_khz_brought_up_to_its_models_16_khz() -> None:
    from tests.voice.audio.test_vad import narrowband, padded

    stt = LocalSpeechToText()
    [heard] = [t async for t in stt.transcribe(narrowband(padded("hours")), 8000, language="en")]
    assert heard.final and heard.text  # words (PocketSphinx's own), where it used to refuse 8 kHz
    with pytest.raises(ProviderError) as refused:
        [t async for t in stt.transcribe(b"\0\0", 500, language="en")]
    assert refused.value.kind == ErrorKind.BAD_REQUEST


def test_pocketsphinx_does_not_stream() -> None:
    assert LocalSpeechToText.open_stream(LocalSpeechToText.__new__(LocalSpeechToText), language="en") is None


@pytest.mark.parametrize(
    ("model", "streams"), [("gpt-4o-mini-transcribe", True), ("gpt-4o-transcribe", True), ("whisper-1", False)]
)
def test_openai_transcription_models_of_the_gpt_4o_family_stream(settings, model: str, streams: bool) -> None:
    from voice.providers.openai_realtime import OpenAIRealtimeSpeechToText

    settings.OPENAI_API_KEY = "sk-test-platform-key"
    candidate = Candidate("openai", f"{model}")
    stt = providers_for(RoutingConfig(llm=(), stt=(candidate,), tts=())).stt
    assert isinstance(stt, RoutedSpeechToText)
    assert isinstance(stt.models[candidate], OpenAIRealtimeSpeechToText) is streams


def test_every_streaming_model_is_an_offered_one() -> None:
    from voice.offerings import CAPABILITIES, STREAMING_STT, STT, streams_speech

    for provider, models in STREAMING_STT.items():
        for model in models:
            assert CAPABILITIES[STT].offers(provider, model)
    assert not streams_speech("openai", "whisper-1")
    assert not streams_speech("openai_compatible", "gpt-4o-transcribe")


async def test_a_base_url_without_a_websocket_form_leaves_batch_transcription(settings) -> None:
    from voice.providers.openai_api import OpenAISpeechToText

    settings.OPENAI_API_KEY = "sk-test-platform-key"
    settings.OPENAI_BASE_URL = "ftp://files.example/v1"
    candidate = Candidate("openai", "gpt-4o-mini-transcribe")
    stt = providers_for(RoutingConfig(llm=(), stt=(candidate,), tts=())).stt
    assert isinstance(stt, RoutedSpeechToText)
    assert isinstance(stt.models[candidate], OpenAISpeechToText)
    assert stt.open_stream(language="en") is None
