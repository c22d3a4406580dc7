"""The transcript of the visitor's turn in progress.

With a provider that streams (``SpeechToText.open_stream``), the turn's audio goes to it as it is spoken:
a stream opens when speech starts (with the pre-roll), every frame of the turn is appended, and a short
silence (``COMMIT_AFTER_MS``), a pause and the turn's end *commit* what came since the last commit (when
there was speech since). The turn's transcript is the committed pieces joined, usually ready before the
pause that lets a reply start (voice.parts.turns), with no audio sent twice.
Otherwise (or once a stream failed in this turn) the utterance so far is transcribed in one request.

A commit runs as a task of its own: a speculation waiting for it may be dropped (the visitor went on
speaking), the piece it brings is still part of the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from voice.audio.frames import PIPELINE_RATE, bytes_to_ms
from voice.providers.base import ProviderError, RouteLog, SpeechToText, Transcript, TranscriptionStream

logger = logging.getLogger(__name__)

# A streamed turn is committed after this much silence: its transcript is then on its way before the
# pause at which a reply may start (voice.queries.PREEMPTIVE_PAUSE_MS). A commit only cuts the stream into
# pieces; if the visitor goes on, the next piece follows.
COMMIT_AFTER_MS = 100


async def transcribe_once(
    stt: SpeechToText,
    pcm: bytes,
    *,
    language: str,
    sample_rate: int = PIPELINE_RATE,
    on_partial: Callable[[str], Awaitable[None]] | None = None,
) -> tuple[str, RouteLog | None]:
    """The final transcript of speech in one request, with the route the router took for this call
    (from the transcripts themselves: the shared router's last_route may be an overlapping call's).
    Raises ProviderError."""
    text, route = "", None
    async for transcript in stt.transcribe(pcm, sample_rate, language=language):
        route = transcript.route or route
        if transcript.final:
            text = transcript.text.strip()
        elif on_partial is not None:
            await on_partial(transcript.text)
    return text, route


class TurnTranscription:
    """The transcription of one visitor turn, from its start (``begin``) to its end (``ended``); its audio
    is 16-bit mono at ``sample_rate`` (the session's hearing rate: voice.pipeline.input)."""

    def __init__(
        self,
        stt: SpeechToText,
        *,
        language: str,
        sample_rate: int = PIPELINE_RATE,
        stream: TranscriptionStream | None = None,
    ) -> None:
        self.stt, self.language, self.sample_rate = stt, language, sample_rate
        self._stream = stream
        self._commits: list[asyncio.Task[Transcript]] = []
        self._fed = 0  # bytes of the turn's utterance appended to the stream
        self._committed_voiced = -1  # the last voiced frame the last commit covers
        self._failed_ms = 0  # audio sent to a stream that failed in this turn (billed all the same)

    @classmethod
    async def begin(
        cls, stt: SpeechToText, *, language: str, pre_roll: bytes, sample_rate: int = PIPELINE_RATE
    ) -> TurnTranscription:
        """Speech started: a stream if the provider has one, with the turn's audio so far."""
        try:
            stream = stt.open_stream(language=language, sample_rate=sample_rate)
        except ProviderError as exc:
            logger.info("speech-to-text stream could not open (%s): this turn is transcribed at its end", exc)
            stream = None
        turn = cls(stt, language=language, sample_rate=sample_rate, stream=stream)
        await turn.feed(pre_roll)
        return turn

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    @property
    def fed(self) -> int:
        """Bytes of the turn's utterance the stream has had."""
        return self._fed

    async def feed(self, utterance: bytes) -> None:
        """The turn's utterance so far (it only grows): what the stream has not had yet is appended."""
        if len(utterance) > self._fed:
            await self.feed_more(utterance[self._fed :])

    async def feed_more(self, audio: bytes) -> None:
        """The turn's audio that follows what the stream has had."""
        stream = self._stream
        if stream is None or not audio:
            return
        self._fed += len(audio)
        try:
            await stream.append(audio)
        except ProviderError as exc:
            await self._give_up(exc)

    def commit(self, last_voiced: int) -> asyncio.Task[Transcript] | None:
        """Commit what the stream got since the last commit; ``last_voiced``: the turn's last voiced frame
        now. Nothing new is committed without speech since the last commit (its transcript stands). None
        when not streaming."""
        if self._stream is None:
            return None
        if last_voiced != self._committed_voiced or not self._commits:
            self._committed_voiced = last_voiced
            self._commits.append(asyncio.create_task(self._stream.commit(), name="stt-commit"))
        return self._commits[-1]

    async def heard(
        self,
        utterance: bytes,
        *,
        ended_at: int | None = None,
        on_partial: Callable[[str], Awaitable[None]] | None = None,
    ) -> tuple[str, RouteLog | None, int]:
        """The transcript of the turn so far, its route, and the audio (ms) a request sent for it (0 when
        streamed: the stream's audio is billed once, by ``ended``). ``ended_at``: the turn ended, this its
        last voiced frame; what came since the last commit is committed first. A stream that fails gives
        way to one request. Raises ProviderError."""
        if self._stream is not None:
            if ended_at is not None:
                await self.feed(utterance)
                self.commit(ended_at)
            commits = list(self._commits)
            # wait, not gather: a speculation cancelled while it waits (the visitor went on) must not
            # cancel the commits, whose pieces still belong to the turn
            if commits:
                await asyncio.wait(commits)
            try:
                pieces = [task.result() for task in commits]
            except ProviderError as exc:
                await self._give_up(exc)
            except asyncio.CancelledError:  # the stream was given up meanwhile: one request instead
                pass
            else:
                route = next((piece.route for piece in reversed(pieces) if piece.route is not None), None)
                return " ".join(text for piece in pieces if (text := piece.text.strip())), route, 0
        text, route = await transcribe_once(
            self.stt, utterance, language=self.language, sample_rate=self.sample_rate, on_partial=on_partial
        )
        return text, route, int(bytes_to_ms(len(utterance), self.sample_rate))

    async def ended(self) -> int:
        """The turn is over: its stream closes; the audio (ms) its stream sent, to bill with the turn."""
        streamed = self._failed_ms + (self._stream.appended_ms if self._stream is not None else 0)
        await self._close()
        return streamed

    async def _give_up(self, exc: ProviderError) -> None:
        if self._stream is None:
            return
        logger.info("speech-to-text stream failed (%s): the rest of this turn is transcribed in one request", exc)
        self._failed_ms += self._stream.appended_ms
        await self._close()

    async def _close(self) -> None:
        stream, self._stream = self._stream, None
        commits, self._commits = self._commits, []
        for task in commits:
            task.cancel()
        for task in commits:
            with contextlib.suppress(asyncio.CancelledError, ProviderError):
                await task
        if stream is not None:
            with contextlib.suppress(ProviderError):
                await stream.close()


__all__ = ["COMMIT_AFTER_MS", "TurnTranscription", "transcribe_once"]
