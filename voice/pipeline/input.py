"""Visitor audio in: any chunk size at any supported rate → 20 ms frames at the hearing rate → turn events.

The hearing rate is 16 kHz, or 8 kHz for 8 kHz audio (a phone's) with webrtcvad: webrtcvad decides at
8 kHz whatever it is given, and speech-to-text gains nothing from audio brought up to 16 kHz, so a call's
audio is not resampled on the way in (at 50 messages a second per call, the filter was the largest
single cost of a phone call's pipeline). The turn events' audio is at the hearing rate (``sample_rate``).
"""

from __future__ import annotations

import logging
import time
from array import array

from voice.audio.frames import NARROWBAND_RATE, PIPELINE_RATE, Reframer, frame_bytes
from voice.audio.resample import StreamResampler
from voice.audio.vad import WEBRTCVAD, SpeechStopped, TurnConfig, TurnDetector, TurnEvent

logger = logging.getLogger(__name__)


def hearing_rate(client_rate: int, config: TurnConfig) -> int:
    """The rate a client's audio is heard at: its own 8 kHz with webrtcvad, else 16 kHz (Silero's model
    takes 16 kHz windows here)."""
    return NARROWBAND_RATE if client_rate == NARROWBAND_RATE and config.detector == WEBRTCVAD else PIPELINE_RATE


class AudioInput:
    def __init__(self, sample_rate: int, config: TurnConfig) -> None:
        self.config = config
        classifier = None
        if config.detector != WEBRTCVAD:
            from voice.audio.silero import speech_classifier

            classifier = speech_classifier(config)
        # a Silero that cannot run here gives way to webrtcvad at the rate Silero would have heard
        self.sample_rate = rate = (
            classifier.sample_rate if classifier is not None else hearing_rate(sample_rate, config)
        )
        self.resampler = StreamResampler(sample_rate, rate)
        self.reframer = Reframer(frame_bytes(rate))
        self.detector = TurnDetector(config, classifier, sample_rate=rate)
        self.frames = 0
        self._arrivals = ArrivalLog()  # enough to date the end of speech in wall-clock time

    def push(self, pcm: bytes) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        for frame in self.reframer.push(self.resampler.process(pcm)):
            self.frames += 1
            event = self.detector.process(frame)
            if event is not None:
                events.append(event)
        self._arrivals.add(self.frames)
        return events

    async def listen(self, pcm: bytes) -> list[TurnEvent]:
        """`push`, with Silero's model calls batched with other sessions' on the speech-detection thread
        (voice.audio.silero.SileroBatcher); webrtcvad (~3 µs a frame) decides inline."""
        if self.detector.detector == WEBRTCVAD:
            return self.push(pcm)
        from voice.audio.silero import SpeechDetectionError, shared_batcher

        frames = self.reframer.push(self.resampler.process(pcm))
        self.frames += len(frames)
        self._arrivals.add(self.frames)
        if not frames:
            return []
        try:
            return await shared_batcher().detect(self.detector, frames)
        except SpeechDetectionError as failure:
            # No session fails for it: this one goes on with webrtcvad, from the first frame not processed.
            logger.warning("speech detection: %s; this session goes on with webrtcvad", failure.__cause__ or failure)
            self.detector.use_webrtcvad()
            events = failure.events
            for frame in frames[failure.next :]:
                if event := self.detector.process(frame):
                    events.append(event)
            return events

    def endpoint_delay_ms(self, stopped: SpeechStopped) -> float | None:
        """Wall-clock time from the arrival of the last voiced frame to the detection of the turn's end."""
        arrived = self._arrivals.arrival_of(stopped.last_voiced)
        return None if arrived is None else (time.monotonic() - arrived) * 1000


class ArrivalLog:
    """When the last ``size`` chunks of a session's audio arrived, and how many frames the session had
    then, in two fixed arrays: no object per chunk.

    It was a deque of (frames, time) tuples. Each tuple is an object the garbage collector tracks, and it
    lived 256 chunks (10 s): at 200 sessions 51,000 of them were alive, and while allocations and frees
    kept balance no collection ran, so they piled up young. The next collection of the youngest
    generation then traversed them all on the event loop: 25-40 ms, every session late by as much
    (docs/benchmarks.md, "Young tuples").
    """

    __slots__ = ("_frames", "_next", "_times")

    def __init__(self, size: int = 256) -> None:
        self._frames = array("q", bytes(8 * size))
        self._times = array("d", bytes(8 * size))
        self._next = 0  # chunks logged so far

    def add(self, frames: int) -> None:
        """A chunk arrived now, after which the session had received ``frames`` frames."""
        slot = self._next % len(self._frames)
        self._frames[slot] = frames
        self._times[slot] = time.monotonic()
        self._next += 1

    def arrival_of(self, frame: int) -> float | None:
        """When the chunk that brought frame number ``frame`` arrived (monotonic seconds); the oldest
        arrival still logged if that chunk is older; None before any."""
        size, logged = len(self._frames), min(self._next, len(self._frames))
        for age in range(logged, 0, -1):  # oldest first
            slot = (self._next - age) % size
            if self._frames[slot] >= frame:
                return self._times[slot]
        return None
