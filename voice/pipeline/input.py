"""Visitor audio in: any chunk size at any supported rate → 20 ms frames at 16 kHz → turn events."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from voice.audio.frames import FRAME_MS, PIPELINE_RATE, Reframer
from voice.audio.resample import StreamResampler
from voice.audio.vad import WEBRTCVAD, SpeechStopped, TurnConfig, TurnDetector, TurnEvent

# Silero VAD's model calls (~100 µs a 32 ms window) leave the event loop for this one thread:
# onnxruntime releases the GIL while it computes, so they run on another core. One thread keeps a
# session's messages in order and the shared model's calls one at a time (docs/architecture.md).
_SPEECH_MODEL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speech-detection")


class AudioInput:
    def __init__(self, sample_rate: int, config: TurnConfig) -> None:
        self.config = config
        self.resampler = StreamResampler(sample_rate, PIPELINE_RATE)
        self.reframer = Reframer()
        self.detector = TurnDetector(config)
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
        """`push`, off the event loop when the detector runs a model; webrtcvad (~2 µs a frame) stays inline."""
        if self.detector.detector == WEBRTCVAD:
            return self.push(pcm)
        return await asyncio.get_running_loop().run_in_executor(_SPEECH_MODEL_THREAD, self.push, pcm)

    def endpoint_delay_ms(self, stopped: SpeechStopped) -> float | None:
        """Wall-clock time from the arrival of the last voiced frame to the detection of the turn's end."""
        last_voiced = stopped.frame_index - self.config.end_silence_ms // FRAME_MS
        for frames, arrived in self._arrivals:
            if frames >= last_voiced:
                return (time.monotonic() - arrived) * 1000
        return None
