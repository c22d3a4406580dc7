"""Streaming sample-rate conversion of 16-bit mono PCM, between any two rates.

Clients send at one of the protocol's rates (voice.protocol), but voices speak at their own: espeak-ng
at 22,050 Hz, others at 16 or 24 kHz. soxr converts any ratio, so any rate a provider produces is
accepted here; only rates no audio stream can have are refused.
"""

from collections.abc import AsyncIterator

import numpy as np
import soxr

from voice.audio.frames import SAMPLE_WIDTH

MIN_RATE = 1000
MAX_RATE = 384_000

# Streaming, soxr holds its output back in blocks: measured at 20 ms chunks, 8 -> 16 kHz (a phone
# caller's audio) lags 64 ms on average (up to 115 ms), 48 -> 16 kHz 21 ms: a caller's barge-in and turn
# end are heard that much later (docs/benchmarks.md, Phone calls). A polyphase filter with a 2.4 ms delay
# was tried (2026-12-07) and took barge-in at one call from 72 to 12 ms, but cost 2-3x soxr's CPU per
# frame, which 200 calls on one core could not afford (overhead p95 75 -> 144-339 ms). Not kept.
# "HQ" on purpose: measured on one core it costs the same as "MQ"/"LQ" (about 8 µs per
# 20 ms at 48 kHz -> 16 kHz), keeps the passband flat to 7 kHz (LQ is -13 dB at 7 kHz,
# which speech recognition hears) and has the lowest steady-state delay (about 12 ms,
# vs 30 ms for "MQ").
QUALITY = "HQ"

_PCM16 = np.dtype("<i2")


def _check_rate(kind: str, rate: int) -> None:
    if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"unsupported {kind} rate {rate!r} Hz; expected an integer from {MIN_RATE} to {MAX_RATE}")


class StreamResampler:
    """Converts a continuous PCM stream between rates, keeping filter state across chunks."""

    __slots__ = ("_stream", "in_rate", "out_rate")

    def __init__(self, in_rate: int, out_rate: int) -> None:
        _check_rate("input", in_rate)
        _check_rate("output", out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream: soxr.ResampleStream | None = None
        if in_rate != out_rate:
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, "int16", QUALITY)

    def process(self, pcm: bytes) -> bytes:
        """Resample the next chunk; output lags input by the filter delay (a few ms)."""
        if len(pcm) % SAMPLE_WIDTH:
            raise ValueError(f"PCM chunk must hold whole 16-bit samples, got {len(pcm)} bytes")
        if self._stream is None or not pcm:
            return pcm
        samples = np.frombuffer(pcm, dtype=_PCM16)
        return self._stream.resample_chunk(samples).tobytes()

    def flush(self) -> bytes:
        """Return the delayed tail at the end of the stream; ready for a new stream after."""
        if self._stream is None:
            return b""
        tail = self._stream.resample_chunk(np.empty(0, dtype=_PCM16), last=True)
        self._stream.clear()
        return tail.tobytes()


async def at_rate(chunks: AsyncIterator[bytes], in_rate: int, out_rate: int) -> AsyncIterator[bytes]:
    """A stream of PCM chunks as whole 16-bit samples at ``out_rate`` (a provider may split a sample
    across chunks, or speak at another rate). Empty chunks are dropped."""
    resampler = StreamResampler(in_rate, out_rate) if in_rate != out_rate else None
    carry = b""
    async for data in chunks:
        pcm = carry + data if carry else data
        usable = len(pcm) - len(pcm) % SAMPLE_WIDTH
        carry = pcm[usable:]
        if usable < len(pcm):
            pcm = pcm[:usable]
        if resampler is not None:
            pcm = resampler.process(pcm)
        if pcm:
            yield pcm
    if resampler is not None and (tail := resampler.flush()):
        yield tail
