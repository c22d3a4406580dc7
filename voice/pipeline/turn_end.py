"""What happens at a pause in the visitor's speech: the turn so far is transcribed in the background
(a streaming provider's commit, else one request to the speech-to-text provider, off the event loop), and

- with semantic end of turn, the verdict of ``voice.text.turn_end``'s rules tells the detector to end the
  turn after ``min_silence_ms`` (complete), ``end_silence_ms`` (unsure) or ``max_silence_ms`` (unfinished);
- with preemptive replies, ``on_heard`` is told the transcript while the pause lasts, so the reply can
  start before the turn ends (voice.parts.turns); ``on_dropped`` when the visitor speaks again.

If the visitor speaks again, the speculation is dropped. If the turn ends with no speech after the pause,
its transcript *is* the turn's transcript: one request to the speech-to-text provider, already done or
under way when the turn ends, never a second one.

A batch speculation sends the whole utterance so far, and a provider bills every request, dropped or not:
``spent`` tells the session how many requests the turn's speculations made and how much audio they
sent (billed as the turn's speech-to-text seconds), and the last verdict, used or not. At most
``MAX_SPECULATIONS_PER_TURN`` a turn; past that, a pause gets the usual end-of-turn silence without a
transcript. (A streamed turn's audio is sent once, whatever its pauses: voice.pipeline.transcription.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voice.audio.frames import PIPELINE_RATE, bytes_to_ms
from voice.audio.vad import SpeechPaused, SpeechStopped, TurnConfig, TurnDetector
from voice.metrics import TURN_END_SPECULATIONS, TURN_END_VERDICTS
from voice.pipeline.transcription import TurnTranscription, transcribe_once
from voice.providers.base import ProviderError, RouteLog, SpeechToText
from voice.text.turn_end import judge, silence_for

logger = logging.getLogger(__name__)

MAX_SPECULATIONS_PER_TURN = 4


@dataclass(frozen=True, slots=True)
class Heard:
    """A transcript of a turn's speech and how it was obtained."""

    text: str
    route: RouteLog | None = None
    verdict: str = ""  # the rule tier's verdict at the last pause, when semantic end of turn ran
    speculative: bool = False  # made at the pause, before the turn ended

    def served_by(self, stt: SpeechToText) -> tuple[str, str]:
        """The provider and model that made this transcript (the route's choice; else the stt's names)."""
        chosen = self.route.chosen if self.route is not None else None
        return (chosen.provider, chosen.model) if chosen is not None else (stt.provider, stt.model)


@dataclass(frozen=True, slots=True)
class Spent:
    """What a turn's speculations cost and found, whether or not one was used."""

    requests: int = 0
    audio_ms: int = 0
    verdict: str = ""  # the last verdict a speculation of the turn reached ("" if none did)


async def transcribe(
    stt: SpeechToText,
    pcm: bytes,
    *,
    language: str,
    sample_rate: int = PIPELINE_RATE,
    on_partial: Callable[[str], Awaitable[None]] | None = None,
) -> Heard:
    """The final transcript of speech, with the route the router took for this call. Raises ProviderError."""
    text, route = await transcribe_once(stt, pcm, language=language, sample_rate=sample_rate, on_partial=on_partial)
    return Heard(text=text, route=route)


class TurnEnd:
    """One voice session's pauses (one pending speculation at a time)."""

    def __init__(
        self,
        stt: SpeechToText,
        detector: TurnDetector,
        config: TurnConfig,
        *,
        language: str,
        transcription: TurnTranscription | None = None,
        on_heard: Callable[[Heard, int], None] | None = None,
        on_dropped: Callable[[], None] | None = None,
    ) -> None:
        self.stt, self.detector, self.config, self.language = stt, detector, config, language
        # The turn in progress's transcription (the session sets it when speech starts); without one, a
        # pause is transcribed in one request.
        self.transcription = transcription or TurnTranscription(
            stt, language=language, sample_rate=detector.sample_rate
        )
        self.on_heard, self.on_dropped = on_heard, on_dropped
        self._task: asyncio.Task[Heard] | None = None
        self._last_voiced = -1  # the pause the task is about
        self._speculations = 0  # requests made for the turn in progress
        self._sent_ms = 0  # and the audio they sent
        self._verdict = ""  # the last verdict of a dropped speculation of the turn

    def paused(self, event: SpeechPaused) -> None:
        self.drop("resumed")
        self._last_voiced = event.last_voiced
        if self._speculations >= MAX_SPECULATIONS_PER_TURN:
            TURN_END_SPECULATIONS.labels("capped").inc()
            if self.config.semantic:
                self.detector.decide(self.config.end_silence_ms, event.last_voiced)
            return
        self._speculations += 1
        transcription = self.transcription
        if transcription.commit(event.last_voiced) is None:  # not streamed: a request sends the utterance so far
            self._sent_ms += int(bytes_to_ms(len(event.utterance), self.detector.sample_rate))
        self._task = asyncio.create_task(self._speculate(event, transcription), name="turn-end")

    def spent(self) -> Spent:
        """The requests and audio (ms) the speculations of the turn just ended sent to speech-to-text, used
        or dropped; call once the turn ended (after `take`): the count starts afresh for the next turn."""
        spent = Spent(self._speculations, self._sent_ms, self._verdict)
        self._speculations, self._sent_ms, self._verdict = 0, 0, ""
        return spent

    def check(self) -> None:
        """After each chunk of audio: the visitor spoke again since the pause, so the speculation is stale."""
        if self._task is not None and self.detector.last_voiced != self._last_voiced and self.detector.in_speech:
            self.drop("resumed")

    def drop(self, outcome: str) -> None:
        if self._task is not None:
            if not self._task.done():
                self._task.cancel()
            elif not self._task.cancelled() and self._task.exception() is None:
                self._verdict = self._task.result().verdict
            TURN_END_SPECULATIONS.labels(outcome).inc()
            self._task = None
            if self.on_dropped is not None:
                self.on_dropped()

    def take(self, stopped: SpeechStopped) -> asyncio.Task[Heard] | None:
        """The speculation for this turn's speech, when the turn ended with no speech after the pause."""
        task = self._task
        if task is None:
            return None
        if stopped.last_voiced != self._last_voiced:
            self.drop("resumed")
            return None
        self._task = None
        return task

    @staticmethod
    async def result(task: asyncio.Task[Heard]) -> Heard | None:
        """The speculative transcript (awaited if still under way), or None if it failed."""
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.cancelled() or task.exception() is not None:
            TURN_END_SPECULATIONS.labels("failed").inc()
            return None
        TURN_END_SPECULATIONS.labels("used").inc()
        return task.result()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ProviderError):
                await task
        if self.on_dropped is not None:
            self.on_dropped()

    async def _speculate(self, event: SpeechPaused, transcription: TurnTranscription) -> Heard:
        started = time.monotonic()
        config = self.config
        try:
            text, route, _ = await transcription.heard(event.utterance)
        except ProviderError as exc:
            logger.info("speculative transcript failed (%s): the usual end-of-turn silence applies", exc)
            if config.semantic:
                self.detector.decide(config.end_silence_ms, event.last_voiced)
            raise
        verdict = ""
        if config.semantic:
            verdict = judge(text)
            TURN_END_VERDICTS.labels(verdict).inc()
            silence = silence_for(
                verdict,
                min_silence_ms=config.min_silence_ms,
                end_silence_ms=config.end_silence_ms,
                max_silence_ms=config.max_silence_ms,
            )
            self.detector.decide(silence, event.last_voiced)
            logger.debug(
                "pause verdict %s on %r after %.0f ms: the turn ends after %s ms of silence",
                verdict,
                text,
                (time.monotonic() - started) * 1000,
                silence,
            )
        heard = Heard(text=text, route=route, verdict=str(verdict), speculative=True)
        # Still the same pause (no speech since): a reply may start now (preemptive replies).
        if self.on_heard is not None and text and self.detector.last_voiced == event.last_voiced:
            try:
                self.on_heard(heard, event.last_voiced)
            except Exception:  # the reply's start is not the transcript's concern: the turn goes on
                logger.exception("starting a reply at a pause failed")
        return heard


__all__ = ["Heard", "Spent", "TurnEnd", "transcribe"]
