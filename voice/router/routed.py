"""Routed providers: each looks like one provider to the pipeline and tries candidates behind it.

An attempt that fails, or has not produced its first token (transcript, audio byte) within the
bound, is abandoned and the next candidate in the plan is tried. Once the first token is out, the
call belongs to that candidate: a failure after it is reported, never retried (the visitor may
already have heard the start). Every outcome feeds the breakers, the moving averages and the metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Generic, TypeVar

from voice.audio.resample import at_rate
from voice.metrics import PROVIDER_FIRST_TOKEN, PROVIDER_REQUESTS, ROUTER_FAILOVERS
from voice.protocol import OUTPUT_SAMPLE_RATE
from voice.providers.base import (
    STREAM_SAMPLE_RATE,
    Attempt,
    ChatEvent,
    ChatMessage,
    ChatModel,
    ErrorKind,
    ProviderError,
    RouteLog,
    SpeechToText,
    TextToSpeech,
    ToolSpec,
    Transcript,
    TranscriptionStream,
)
from voice.router.candidates import Candidate
from voice.router.health import ProviderHealth
from voice.router.policies import FALLBACK, Plan, RouteRequest, SmartRules, plan

T = TypeVar("T")


class _Opened(Generic[T]):
    """A candidate's stream whose first item has arrived."""

    __slots__ = ("attempt", "candidate", "first", "stream")

    def __init__(self, candidate: Candidate, attempt: Attempt, first: T, stream: AsyncIterator[T]) -> None:
        self.candidate, self.attempt, self.first, self.stream = candidate, attempt, first, stream


async def open_first(
    capability: str,
    decided: Plan,
    log: RouteLog,
    open_stream: Callable[[Candidate], AsyncIterator[T]],
    *,
    bound_s: float,
    health: ProviderHealth,
) -> _Opened[T]:
    """Try the plan's candidates in order until one yields its first item within ``bound_s``."""
    for candidate, why in decided.skipped:
        _note(log, capability, Attempt(candidate.provider, candidate.model, "skipped", why))
    for candidate in decided.order:
        probing = health.state(candidate) == "half_open"
        if probing and not await health.claim_probe(candidate):
            _note(log, capability, Attempt(candidate.provider, candidate.model, "skipped", "another probe is running"))
            continue
        started = time.monotonic()
        stream = open_stream(candidate)
        try:
            async with asyncio.timeout(bound_s):
                first = await anext(stream)
        except (TimeoutError, StopAsyncIteration, ProviderError) as exc:
            await _close(stream)
            kind, message, hold_s = _classify(exc, bound_s)
            _note(log, capability, Attempt(candidate.provider, candidate.model, kind, message))
            # The shared write runs beside the next attempt: failover never waits for Redis.
            _in_background(health.record_failure(candidate, f"{kind}: {message}", hold_open_s=hold_s))
            continue
        except BaseException:  # cancelled (the visitor interrupted): not the provider's fault
            await _close(stream)
            if probing:  # let the next turn probe at once rather than after a whole cool-down
                _in_background(health.release_probe(candidate))
            raise
        first_ms = (time.monotonic() - started) * 1000
        attempt = Attempt(candidate.provider, candidate.model, "ok", first_token_ms=first_ms)
        log.attempts.append(attempt)  # counted in the metrics when it ends (see finish)
        log.chosen = attempt
        PROVIDER_FIRST_TOKEN.labels(capability, candidate.provider, candidate.model).observe(first_ms / 1000)
        if candidate != decided.first_choice:
            ROUTER_FAILOVERS.labels(capability).inc()
        return _Opened(candidate, attempt, first, stream)
    if not log.attempts:
        log.reason = log.reason or "no candidate is configured"
    raise ProviderError(ErrorKind.UNAVAILABLE, f"every {capability} candidate failed", route=log)


async def finish(
    opened: _Opened[T], capability: str, health: ProviderHealth, *, always_record: bool
) -> AsyncIterator[T]:
    """The rest of an opened stream. A failure here is final: it is recorded and re-raised. The attempt
    is counted once, here: as its error kind, or "ok" (also when the visitor cut the reply short)."""
    candidate = opened.candidate
    try:
        async for item in opened.stream:
            yield item
    except ProviderError as exc:
        opened.attempt.outcome = str(exc.kind)
        opened.attempt.error = f"after the first token: {exc}"
        _in_background(health.record_failure(candidate, f"{exc.kind}: {exc}"))
        raise
    finally:
        PROVIDER_REQUESTS.labels(capability, candidate.provider, candidate.model, opened.attempt.outcome).inc()
        await _close(opened.stream)
    # Closed and healthy already: skip the shared write unless the moving average needs the sample.
    if always_record or health.get(candidate).failures or health.state(candidate) != "closed":
        _in_background(health.record_success(candidate, opened.attempt.first_token_ms))


_writes: set[asyncio.Task[None]] = set()


async def health_writes_settled() -> None:
    """Wait for the shared health writes started so far (tests, and a clean shutdown)."""
    while _writes:
        await asyncio.gather(*list(_writes), return_exceptions=True)


def _in_background(write: Coroutine[object, object, None]) -> None:
    """Shared health writes are not on the turn's path; keep a reference until each is done."""
    task = asyncio.ensure_future(write)
    _writes.add(task)
    task.add_done_callback(_writes.discard)


def _note(log: RouteLog, capability: str, attempt: Attempt) -> None:
    log.attempts.append(attempt)
    PROVIDER_REQUESTS.labels(capability, attempt.provider, attempt.model, attempt.outcome).inc()


def _classify(exc: BaseException, bound_s: float) -> tuple[str, str, float]:
    if isinstance(exc, TimeoutError):
        return str(ErrorKind.TIMEOUT), f"no first token within {bound_s * 1000:.0f} ms", 0.0
    if isinstance(exc, StopAsyncIteration):
        return str(ErrorKind.UNAVAILABLE), "the stream ended without any output", 0.0
    assert isinstance(exc, ProviderError)
    hold = exc.retry_after_s or 0.0 if exc.kind == ErrorKind.RATE_LIMITED else 0.0
    return str(exc.kind), str(exc)[:300], hold


async def _close(stream: AsyncIterator[object]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


class RoutedChat(ChatModel):
    """The assistant's chat models behind its routing policy. Yields the RouteLog before the first token."""

    def __init__(
        self,
        candidates: Sequence[tuple[Candidate, ChatModel]],
        *,
        policy: str,
        bound_s: float,
        health: ProviderHealth,
        smart: SmartRules | None = None,
    ) -> None:
        self.models = dict(candidates)
        self.candidates = tuple(self.models)
        self.provider, self.model = self.candidates[0].provider, self.candidates[0].model
        self.policy, self.bound_s, self.health, self.smart = policy, bound_s, health, smart

    def plan(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> Plan:
        return plan(self.policy, self.candidates, RouteRequest.of(messages, tools), self.health, smart=self.smart)

    async def stream(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ChatEvent]:
        self.health.refresh_soon()
        decided = self.plan(messages, tools)
        log = RouteLog("llm", self.policy, decided.reason)
        opened = await open_first(
            "llm",
            decided,
            log,
            lambda candidate: self.models[candidate].stream(messages, tools=tools),
            bound_s=self.bound_s,
            health=self.health,
        )
        yield log
        yield opened.first
        async for event in finish(opened, "llm", self.health, always_record=True):
            yield event


class _RoutedSpeech(Generic[T]):
    """Speech candidates tried in order (primary, then fallbacks). ``last_route`` tells what served the
    last call, and ``provider`` / ``model`` name it."""

    def __init__(self, candidates: Sequence[tuple[Candidate, T]], *, bound_s: float, health: ProviderHealth) -> None:
        self.models = dict(candidates)
        self.candidates = tuple(self.models)
        self.provider, self.model = self.candidates[0].provider, self.candidates[0].model
        self.bound_s, self.health = bound_s, health
        self.last_route: RouteLog | None = None


class RoutedSpeechToText(_RoutedSpeech[SpeechToText], SpeechToText):
    """Speech-to-text behind the fallback order."""

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        self.health.refresh_soon()
        decided = plan(FALLBACK, self.candidates, _NO_REQUEST, self.health)
        self.last_route = log = RouteLog("stt", FALLBACK, decided.reason)
        opened = await open_first(
            "stt",
            decided,
            log,
            lambda candidate: self.models[candidate].transcribe(pcm, sample_rate, language=language),
            bound_s=self.bound_s,
            health=self.health,
        )
        self.provider, self.model = opened.candidate.provider, opened.candidate.model
        yield replace(opened.first, route=log)  # this call's route: last_route may be another call's by now
        async for transcript in finish(opened, "stt", self.health, always_record=False):
            yield replace(transcript, route=log)

    def open_stream(self, *, language: str, sample_rate: int = STREAM_SAMPLE_RATE) -> TranscriptionStream | None:
        """The first healthy candidate's stream, if that candidate streams; else None (the batch path).

        Only a candidate whose breaker is closed streams: opening cannot wait to claim a half-open
        breaker's probe, which the batch path makes. A later candidate that streams is not used in the
        first one's place: batch transcription would still go to the first, and the turn's words should
        come from the model the tenant chose."""
        self.health.refresh_soon()
        decided = plan(FALLBACK, self.candidates, _NO_REQUEST, self.health)
        skipped = [Attempt(c.provider, c.model, "skipped", why) for c, why in decided.skipped]
        for candidate in decided.order:
            if self.health.state(candidate) != "closed":
                why = "half-open: the batch path probes it"
                skipped.append(Attempt(candidate.provider, candidate.model, "skipped", why))
                continue
            stream = self.models[candidate].open_stream(language=language, sample_rate=sample_rate)
            if stream is None:
                return None
            return RoutedTranscriptionStream(self, candidate, stream, reason=decided.reason, skipped=skipped)
        return None


class RoutedTranscriptionStream(TranscriptionStream):
    """A candidate's stream, bounded and accounted like a batch call: each commit is one attempt (its
    outcome in the metrics, its failure on the candidate's breaker, its route on the transcript)."""

    def __init__(
        self,
        owner: RoutedSpeechToText,
        candidate: Candidate,
        stream: TranscriptionStream,
        *,
        reason: str,
        skipped: Sequence[Attempt] = (),
    ) -> None:
        self.owner, self.candidate, self.stream = owner, candidate, stream
        self.reason, self.skipped = reason, tuple(skipped)
        # One stream is one connection: its failure counts once on the breaker, however many commits were
        # waiting on it (as one failed batch request counts once).
        self._failure_recorded = False

    @property
    def appended_ms(self) -> int:  # type: ignore[override]  # the candidate's count, read through
        return self.stream.appended_ms

    async def append(self, pcm: bytes) -> None:
        await self.stream.append(pcm)

    async def commit(self) -> Transcript:
        candidate, health, bound_s = self.candidate, self.owner.health, self.owner.bound_s
        log = RouteLog("stt", FALLBACK, self.reason, attempts=[replace(a) for a in self.skipped])
        started = time.monotonic()
        try:
            async with asyncio.timeout(bound_s):
                transcript = await self.stream.commit()
        except (TimeoutError, ProviderError) as exc:
            kind, message, hold_s = _classify(exc, bound_s)
            if isinstance(exc, TimeoutError):
                message = f"no transcript within {bound_s * 1000:.0f} ms of the commit"
                await self.stream.close()  # its later pieces could not be trusted
            _note(log, "stt", Attempt(candidate.provider, candidate.model, kind, message))
            if not self._failure_recorded:
                self._failure_recorded = True
                _in_background(health.record_failure(candidate, f"{kind}: {message}", hold_open_s=hold_s))
            self.owner.last_route = log
            raise ProviderError(
                ErrorKind(kind), message, provider=candidate.provider, retry_after_s=hold_s or None, route=log
            ) from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        attempt = Attempt(candidate.provider, candidate.model, "ok", first_token_ms=elapsed_ms)
        _note(log, "stt", attempt)
        log.chosen = attempt
        PROVIDER_FIRST_TOKEN.labels("stt", candidate.provider, candidate.model).observe(elapsed_ms / 1000)
        if health.get(candidate).failures or health.state(candidate) != "closed":
            _in_background(health.record_success(candidate, None))
        self.owner.last_route = log
        return replace(transcript, final=True, route=log)

    async def close(self) -> None:
        await self.stream.close()


class RoutedSpeech(_RoutedSpeech[TextToSpeech], TextToSpeech):
    """Text-to-speech candidates in order, always at the output rate whatever the candidate's own."""

    sample_rate = OUTPUT_SAMPLE_RATE

    @property
    def speech_output(self) -> str:
        """The first candidate's: the voice the listener hears unless it fails over."""
        return self.models[self.candidates[0]].speech_output

    async def synthesize(self, text: str, *, voice: str, speed: float, style: str = "") -> AsyncIterator[bytes]:
        self.health.refresh_soon()
        decided = plan(FALLBACK, self.candidates, _NO_REQUEST, self.health)
        self.last_route = log = RouteLog("tts", FALLBACK, decided.reason)
        opened = await open_first(
            "tts",
            decided,
            log,
            lambda candidate: self._speak(self.models[candidate], text, voice, speed, style),
            bound_s=self.bound_s,
            health=self.health,
        )
        self.provider, self.model = opened.candidate.provider, opened.candidate.model
        yield opened.first
        async for pcm in finish(opened, "tts", self.health, always_record=False):
            yield pcm

    @staticmethod
    def _speak(tts: TextToSpeech, text: str, voice: str, speed: float, style: str) -> AsyncIterator[bytes]:
        speech = tts.synthesize(text, voice=voice, speed=speed, style=style)
        return at_rate(speech, tts.sample_rate, OUTPUT_SAMPLE_RATE)


_NO_REQUEST = RouteRequest(input_tokens=0, last_user_words=0, tools_offered=0, follows_tool_call=False)
