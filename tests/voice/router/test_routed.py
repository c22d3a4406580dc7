"""Failover before the first token, never after it; speech falls back to text; every attempt logged."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest

from voice.pipeline.reply import Reply, ReplyPipeline
from voice.providers.base import (
    ChatEvent,
    ChatMessage,
    ChatModel,
    ErrorKind,
    ProviderError,
    RouteLog,
    SpeechToText,
    TextDelta,
    TextToSpeech,
    ToolSpec,
    Transcript,
    Usage,
)
from voice.router.candidates import Candidate
from voice.router.health import ProviderHealth
from voice.router.routed import RoutedChat, RoutedSpeech, RoutedSpeechToText, health_writes_settled

MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hello there")]


class ScriptedChat(ChatModel):
    """Behaves as told: answer, fail before the first token, hang, or fail after it."""

    def __init__(self, behaviour: str, text: str = "Hi from me.") -> None:
        self.provider, self.model = "openai", behaviour
        self.behaviour, self.text, self.calls = behaviour, text, 0

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        self.calls += 1
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        if self.behaviour == "429":
            raise ProviderError(ErrorKind.RATE_LIMITED, "429 Too Many Requests", retry_after_s=7)
        if self.behaviour == "500":
            raise ProviderError(ErrorKind.UNAVAILABLE, "500 Internal Server Error")
        for word in self.text.split():
            yield TextDelta(word + " ")
            if self.behaviour == "cut":
                raise ProviderError(ErrorKind.UNAVAILABLE, "stream cut")
        yield Usage(10, 3)


def _candidates(*models: ChatModel) -> list[tuple[Candidate, ChatModel]]:
    return [(Candidate("openai", f"{m.model}-{uuid.uuid4().hex[:6]}"), m) for m in models]


def _health() -> ProviderHealth:
    return ProviderHealth(failures_to_open=3, cooldown_s=30)


async def _collect(chat: ChatModel) -> list[ChatEvent]:
    return [event async for event in chat.stream(MESSAGES)]


async def test_the_route_log_comes_first_then_the_reply() -> None:
    chat = RoutedChat(_candidates(ScriptedChat("ok")), policy="fixed", bound_s=1.0, health=_health())
    events = await _collect(chat)
    log = events[0]
    assert isinstance(log, RouteLog)
    assert log.as_dict()["reason"] == "fixed: the primary model"
    assert [a["outcome"] for a in log.as_dict()["attempts"]] == ["ok"]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hi from me. "


async def test_a_hanging_primary_is_abandoned_at_the_bound_and_the_next_answers() -> None:
    hanging, backup = ScriptedChat("hang"), ScriptedChat("ok", "Backup here.")
    chat = RoutedChat(_candidates(hanging, backup), policy="fallback", bound_s=0.2, health=_health())
    started = time.monotonic()
    events = await _collect(chat)
    first_token_s = time.monotonic() - started
    assert 0.2 <= first_token_s < 0.5
    log = events[0]
    assert isinstance(log, RouteLog)
    outcomes = [(a.model.split("-")[0], a.outcome) for a in log.attempts]
    assert outcomes == [("hang", "timeout"), ("ok", "ok")]
    assert log.attempts[0].error == "no first token within 200 ms"
    assert log.chosen is log.attempts[1]


@pytest.mark.parametrize(("behaviour", "kind"), [("429", "rate_limited"), ("500", "unavailable")])
async def test_an_error_before_the_first_token_fails_over_and_feeds_the_breaker(behaviour: str, kind: str) -> None:
    health = _health()
    candidates = _candidates(ScriptedChat(behaviour), ScriptedChat("ok"))
    chat = RoutedChat(candidates, policy="fallback", bound_s=1.0, health=health)
    events = await _collect(chat)
    await health_writes_settled()
    assert [a.outcome for a in events[0].attempts] == [kind, "ok"]
    failed = health.get(candidates[0][0])
    assert failed.failures == 1
    if kind == "rate_limited":  # a rate limit opens the breaker for its retry-after at once
        assert health.state(candidates[0][0]) == "open"
        assert 6 < failed.opened_until - time.time() <= 7


async def test_nothing_is_retried_once_the_first_token_is_out() -> None:
    cutting, backup = ScriptedChat("cut", "Partial reply here."), ScriptedChat("ok")
    chat = RoutedChat(_candidates(cutting, backup), policy="fallback", bound_s=1.0, health=_health())
    seen: list[ChatEvent] = []

    async def listen() -> None:
        async for event in chat.stream(MESSAGES):
            seen.append(event)

    with pytest.raises(ProviderError) as failure:
        await listen()
    assert failure.value.kind == ErrorKind.UNAVAILABLE
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Partial "]
    assert backup.calls == 0
    log = seen[0]
    assert isinstance(log, RouteLog)
    assert log.attempts[0].error == "after the first token: stream cut"


async def test_when_every_candidate_fails_the_error_carries_the_route() -> None:
    chat = RoutedChat(
        _candidates(ScriptedChat("500"), ScriptedChat("hang")), policy="fallback", bound_s=0.1, health=_health()
    )
    with pytest.raises(ProviderError) as failure:
        await _collect(chat)
    route = failure.value.route
    assert route is not None and route.chosen is None
    assert [a.outcome for a in route.attempts] == ["unavailable", "timeout"]


async def test_an_open_breaker_is_skipped_without_a_call_and_logged() -> None:
    health = _health()
    broken, backup = ScriptedChat("500"), ScriptedChat("ok")
    candidates = _candidates(broken, backup)
    for _ in range(3):
        await health.record_failure(candidates[0][0], "unavailable")
    events = await _collect(RoutedChat(candidates, policy="fallback", bound_s=1.0, health=health))
    await health_writes_settled()
    assert broken.calls == 0
    assert [(a.outcome, a.error) for a in events[0].attempts] == [("skipped", "circuit open"), ("ok", "")]


async def test_an_interrupted_attempt_is_not_counted_against_the_provider() -> None:
    health = _health()
    candidates = _candidates(ScriptedChat("hang"))
    chat = RoutedChat(candidates, policy="fixed", bound_s=10.0, health=health)
    task = asyncio.create_task(_collect(chat))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert health.get(candidates[0][0]).failures == 0


class ScriptedSpeech(TextToSpeech):
    def __init__(self, behaviour: str, sample_rate: int = 24000) -> None:
        self.provider, self.model, self.sample_rate, self.behaviour = "openai", behaviour, sample_rate, behaviour

    async def synthesize(self, text: str, *, voice: str, speed: float, style: str = "") -> AsyncIterator[bytes]:
        if self.behaviour == "500":
            raise ProviderError(ErrorKind.UNAVAILABLE, "500")
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        for _ in range(5):
            yield b"\x10\x00" * (self.sample_rate // 50)  # 20 ms


class ScriptedTranscriber(SpeechToText):
    def __init__(self, behaviour: str) -> None:
        self.provider, self.model, self.behaviour = "openai", behaviour, behaviour

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        if self.behaviour == "500":
            raise ProviderError(ErrorKind.UNAVAILABLE, "500")
        yield Transcript("hello", final=True)


async def test_speech_fails_over_and_comes_out_at_the_output_rate() -> None:
    candidates = [
        (Candidate("openai", f"tts-{uuid.uuid4().hex[:6]}"), ScriptedSpeech("500")),
        (Candidate("simulated", f"tts-{uuid.uuid4().hex[:6]}"), ScriptedSpeech("ok", sample_rate=16000)),
    ]
    tts = RoutedSpeech(candidates, bound_s=1.0, health=_health())
    pcm = b"".join([chunk async for chunk in tts.synthesize("Hello.", voice="alloy", speed=1.0)])
    assert abs(len(pcm) / 2 / 24000 - 0.1) < 0.01  # 100 ms at 16 kHz, resampled to 24 kHz
    assert tts.last_route is not None
    assert [a.outcome for a in tts.last_route.attempts] == ["unavailable", "ok"]
    assert (tts.provider, tts.model) == ("simulated", candidates[1][0].model)


async def test_speech_to_text_fails_over_to_the_next_candidate() -> None:
    candidates = [
        (Candidate("openai", f"stt-{uuid.uuid4().hex[:6]}"), ScriptedTranscriber("500")),
        (Candidate("local", f"stt-{uuid.uuid4().hex[:6]}"), ScriptedTranscriber("ok")),
    ]
    stt = RoutedSpeechToText(candidates, bound_s=1.0, health=_health())
    results = [t async for t in stt.transcribe(b"\x00\x00" * 1600, 16000, language="en")]
    assert results == [Transcript("hello", final=True)]
    assert stt.provider == "local"


async def test_when_every_speech_candidate_fails_the_reply_still_arrives_as_text() -> None:
    tts = RoutedSpeech(
        [(Candidate("openai", f"tts-{uuid.uuid4().hex[:6]}"), ScriptedSpeech("hang"))], bound_s=0.1, health=_health()
    )
    chat = RoutedChat(
        _candidates(ScriptedChat("ok", "First sentence. Second one.")), policy="fixed", bound_s=1.0, health=_health()
    )
    events: list[dict] = []
    audio: list[bytes] = []

    async def send_event(event: dict) -> None:
        events.append(event)

    async def send_audio(frame: bytes) -> None:
        audio.append(frame)

    reply = Reply(id=1, voice="alloy", speed=1.0, text_only=False)
    await ReplyPipeline(reply, tts=tts, send_event=send_event, send_audio=send_audio).run_from_chat(chat, MESSAGES)
    assert reply.text == "First sentence. Second one. "
    assert audio == []
    assert reply.speech_failed
    assert [e["code"] for e in events if e["type"] == "error"] == ["speech_failed"]
    assert "".join(e["delta"] for e in events if e["type"] == "response.text.delta") == reply.text
    record = reply.route_record()
    assert record["llm"]["chosen"].startswith("openai:ok-")
    assert [a["outcome"] for a in record["tts"]["attempts"]] == ["timeout"]


async def test_a_failover_is_counted_only_when_another_model_served_than_the_policy_chose() -> None:
    from prometheus_client import REGISTRY

    def failovers() -> float:
        return REGISTRY.get_sample_value("aura_router_failovers_total", {"capability": "llm"}) or 0.0

    health = _health()
    candidates = _candidates(ScriptedChat("ok"), ScriptedChat("500"))
    await health.record_failure(candidates[1][0], "down", hold_open_s=60)  # an open fallback: no failover
    before = failovers()
    await _collect(RoutedChat(candidates, policy="fallback", bound_s=1.0, health=health))
    assert failovers() == before
    health = _health()  # another deployment's view: now the primary is the one that is down
    await health.record_failure(candidates[0][0], "down", hold_open_s=60)
    candidates[1][1].behaviour = "ok"
    events = await _collect(RoutedChat(candidates, policy="fallback", bound_s=1.0, health=health))
    assert [(a.model, a.outcome) for a in events[0].attempts] == [
        (candidates[0][0].model, "skipped"),
        (candidates[1][0].model, "ok"),
    ]
    assert failovers() == before + 1


async def test_an_interrupted_probe_frees_its_claim_for_the_next_turn() -> None:
    health = ProviderHealth(failures_to_open=1, cooldown_s=0.05)
    candidates = _candidates(ScriptedChat("hang"))
    await health.record_failure(candidates[0][0], "down")
    await asyncio.sleep(0.1)  # the cool-down is over: half-open
    assert health.state(candidates[0][0]) == "half_open"
    task = asyncio.create_task(_collect(RoutedChat(candidates, policy="fixed", bound_s=10.0, health=health)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await health_writes_settled()
    assert await health.claim_probe(candidates[0][0]) is True


async def test_overlapping_transcriptions_each_keep_their_own_route() -> None:
    """Review 16, finding 10: the speech-to-text route was read from the shared router's last_route after
    the stream: a speculative transcript overlapping the turn's own took the other request's route."""
    from voice.pipeline.turn_end import transcribe

    release, waiting = asyncio.Event(), asyncio.Event()

    class ByAudio(SpeechToText):
        """The primary fails audio b"A"; the fallback answers A slowly (after a partial)."""

        def __init__(self, role: str) -> None:
            self.provider, self.model, self.role = "openai", role, role

        async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
            if self.role == "primary" and pcm == b"AA":
                raise ProviderError(ErrorKind.UNAVAILABLE, "500")
            yield Transcript("hel", final=False)
            if pcm == b"AA":
                waiting.set()
                await release.wait()
            yield Transcript(f"{self.role} heard {pcm.decode()}", final=True)

    candidates = [
        (Candidate("openai", f"stt-{uuid.uuid4().hex[:6]}"), ByAudio("primary")),
        (Candidate("local", f"stt-{uuid.uuid4().hex[:6]}"), ByAudio("fallback")),
    ]
    stt = RoutedSpeechToText(candidates, bound_s=1.0, health=_health())
    first = asyncio.create_task(transcribe(stt, b"AA", language="en"))
    await asyncio.wait_for(waiting.wait(), 30)  # A failed over and waits in the fallback's stream
    second = await transcribe(stt, b"BB", language="en")  # B starts and ends meanwhile
    release.set()
    first_heard = await first
    assert first_heard.text == "fallback heard AA"
    assert first_heard.route is not None
    assert [a.outcome for a in first_heard.route.attempts] == ["unavailable", "ok"]
    assert first_heard.route.chosen is not None and first_heard.route.chosen.provider == "local"
    assert second.route is not None and [a.outcome for a in second.route.attempts] == ["ok"]
    # and the turn is billed to the model that made its transcript, not the one the router served last
    assert stt.provider == "openai"
    assert first_heard.served_by(stt) == ("local", candidates[1][0].model)
