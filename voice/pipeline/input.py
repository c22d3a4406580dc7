"""Visitor audio in: any chunk size at any supported rate → 20 ms frames at the hearing rate → turn events.

The hearing rate is 16 kHz, or 8 kHz for 8 kHz audio (a phone's) with webrtcvad: webrtcvad decides at
8 kHz whatever it is given, and speech-to-text gains nothing from audio brought up to 16 kHz, so a call's
audio is not resampled on the way in (at 50 messages a second per call, the filter was the largest
single cost of a phone call's pipeline). The turn events' audio is at the hearing rate (``sample_rate``).
"""

from __future__ import annotations

import logging
import time
from collections import deque

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
        # (frames received so far, arrival time): enough to date the end of speech in wall-clock time.
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=256)

    def push(self, pcm: bytes) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        for frame in self.reframer.push(self.resampler.process(pcm)):
            self.frames += 1
            event = self.detector.process(frame)
            if event is not None:
                events.append(event)
        self._arrivals.append((self.frames, time.monotonic()))
        return events

    async def listen(self, pcm: bytes) -> list[TurnEvent]:
        """`push`, with Silero's model calls batched with other sessions' on the speech-detection thread
        (voice.audio.silero.SileroBatcher); webrtcvad (~3 µs a frame) decides inline."""
        if self.detector.detector == WEBRTCVAD:
            return self.push(pcm)
        from voice.audio.silero import SpeechDetectionError, shared_batcher

        frames = self.reframer.push(self.resampler.process(pcm))
        self.frames += len(frames)
        self._arrivals.append((self.frames, time.monotonic()))
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
        last_voiced = stopped.last_voiced
        for frames, arrived in self._arrivals:
            if frames >= last_voiced:
                return (time.monotonic() - arrived) * 1000
        return None
