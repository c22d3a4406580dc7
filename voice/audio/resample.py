"""Streaming sample-rate conversion of 16-bit mono PCM, between any two rates.

Clients send at one of the protocol's rates (voice.protocol), but voices speak at their own: espeak-ng
at 22,050 Hz, others at 16 or 24 kHz. soxr converts any ratio, so any rate a provider produces is
accepted here; only rates no audio stream can have are refused. Telephone audio brought up to 16 kHz
(8 -> 16 kHz, for Silero: voice.pipeline.input) has a filter of its own, for its delay (below).
"""

from collections.abc import AsyncIterator

import numpy as np
import soxr

from voice.audio.frames import SAMPLE_WIDTH

MIN_RATE = 1000
MAX_RATE = 384_000

# Streaming, soxr holds its output back in blocks: measured at 20 ms chunks, 8 -> 16 kHz (a phone
# caller's audio) lags 64 ms on average (up to 115 ms), 48 -> 16 kHz 21 ms. A caller's barge-in and turn
# end were heard that much later, so 8 -> 16 kHz has its own filter below, which lags 1.8 ms
# (docs/benchmarks.md, Phone calls). Every other conversion, 12 -> 24 kHz included, is soxr's: the
# filter is made for the telephone band (flat to 3.4 kHz of a 4 kHz band).
# "HQ" on purpose: measured on one core it costs the same as "MQ"/"LQ" (about 8 µs per
# 20 ms at 48 kHz -> 16 kHz), keeps the passband flat to 7 kHz (LQ is -13 dB at 7 kHz,
# which speech recognition hears) and has the lowest steady-state delay (about 12 ms,
# vs 30 ms for "MQ").
QUALITY = "HQ"

_PCM16 = np.dtype("<i2")


def _check_rate(kind: str, rate: int) -> None:
    if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"unsupported {kind} rate {rate!r} Hz; expected an integer from {MIN_RATE} to {MAX_RATE}")


def _half_band_taps(taps: int = 59, kaiser_beta: float = 6.5) -> np.ndarray:
    """The even phase of a Kaiser-windowed half-band low-pass (the odd phase is a single tap of 1)."""
    n = np.arange(taps) - (taps - 1) // 2
    h = np.sinc(n / 2) * np.kaiser(taps, kaiser_beta)
    even = h[0::2]
    return even / even.sum()  # unity gain at DC


_HALF_BAND = _half_band_taps()
_HISTORY = len(_HALF_BAND) - 1  # input samples each output reaches back: 29
_DELAY = len(_HALF_BAND) - 1  # output samples the filter lags: 29 (1.8 ms at 16 kHz)
PHONE_RATE = 8000  # the telephone network's audio
# Both phases in one product over each input sample's 30-sample window: the filter's taps (reversed: a
# convolution is a correlation with them) and the unit impulse that takes the window's middle sample.
_PHASES = np.zeros((len(_HALF_BAND), 2))
_PHASES[:, 0] = _HALF_BAND[::-1]
_PHASES[_HISTORY // 2 + 1, 1] = 1.0
_LOWEST, _HIGHEST = np.float64(-32768), np.float64(32767)


class _Doubler:
    """Streaming 8 -> 16 kHz by a 59-tap half-band filter (Kaiser window, beta 6.5), for a phone caller.

    Flat (±0.005 dB) to 3.4 kHz, the telephone band; its images (from 4.6 kHz up) at least 66 dB down;
    the output lags the input by 29 samples (1.8 ms at 16 kHz) whatever the chunk size, where soxr's
    streaming mode lags 64 ms on average. Output sample n is the input's time n / 16,000 s, as soxr's
    is: the filter's first 29 samples are dropped and ``flush`` gives the last 29. Rounded to the
    nearest sample value, clipped at full scale.

    Each output pair is one dot product with the 30 taps and one input sample taken as it is (the
    half-band's odd phase is a unit impulse): both phases are one matrix product over the input's
    30-sample windows, a strided view of one array kept between chunks (the 29 samples of history, then
    the chunk; remade only when the chunk size changes, and a phone's is always 40 ms). The product is
    about 5 µs per 40 ms; the rest is numpy's per-call overhead, so there are few calls (``np.clip``
    alone cost 4 µs in Python-level checks). About 9 µs per 40 ms on a quiet core, against 11 µs with
    ``np.convolve`` on fresh arrays, the same bytes.
    """

    __slots__ = ("_signal", "_to_skip", "_windows")

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._signal = np.zeros(_HISTORY, dtype=np.float64)  # the last 29 input samples, then the chunk
        self._windows: np.ndarray | None = None
        self._to_skip = _DELAY  # the filter's start, before the first input sample's own output

    def _buffers_for(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        signal = self._signal
        if len(signal) == _HISTORY + count and self._windows is not None:
            signal[:_HISTORY] = signal[count:]  # the history slides to the front (numpy copies overlaps safely)
            return signal, self._windows
        grown = np.empty(_HISTORY + count, dtype=np.float64)
        grown[:_HISTORY] = signal[len(signal) - _HISTORY :]
        step = grown.itemsize
        self._signal = grown
        self._windows = np.lib.stride_tricks.as_strided(grown, (count, len(_HALF_BAND)), (step, step), writeable=False)
        return grown, self._windows

    def process(self, samples: np.ndarray) -> bytes:
        count = len(samples)
        if not count:
            return b""
        signal, windows = self._buffers_for(count)
        signal[_HISTORY:] = samples
        pairs = np.dot(windows, _PHASES)  # per input sample: (filtered, as it is), in output order
        np.rint(pairs, out=pairs)
        np.maximum(pairs, _LOWEST, out=pairs)  # np.clip costs 4 µs in Python-level checks; these 0.7
        np.minimum(pairs, _HIGHEST, out=pairs)
        out = pairs.astype(_PCM16).ravel()
        if self._to_skip:
            skip = min(self._to_skip, 2 * count)
            self._to_skip -= skip
            return out[skip:].tobytes()
        return out.tobytes()

    def flush(self) -> bytes:
        """The delayed tail, as many samples as were dropped at the start (so the stream's output is
        exactly twice its input), then a fresh start."""
        owed = _DELAY - self._to_skip
        tail = self.process(np.zeros(_HISTORY // 2 + 1, dtype=_PCM16))[: 2 * owed] if owed else b""
        self._reset()
        return tail


class StreamResampler:
    """Converts a continuous PCM stream between rates, keeping filter state across chunks."""

    __slots__ = ("_doubler", "_stream", "in_rate", "out_rate")

    def __init__(self, in_rate: int, out_rate: int) -> None:
        _check_rate("input", in_rate)
        _check_rate("output", out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream: soxr.ResampleStream | None = None
        self._doubler: _Doubler | None = None
        if in_rate == PHONE_RATE and out_rate == 2 * in_rate:
            self._doubler = _Doubler()
        elif in_rate != out_rate:
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, "int16", QUALITY)

    def process(self, pcm: bytes) -> bytes:
        """Resample the next chunk; output lags input by the filter delay (a few ms)."""
        if len(pcm) % SAMPLE_WIDTH:
            raise ValueError(f"PCM chunk must hold whole 16-bit samples, got {len(pcm)} bytes")
        if not pcm:
            return pcm
        if self._doubler is not None:
            return self._doubler.process(np.frombuffer(pcm, dtype=_PCM16))
        if self._stream is None:
            return pcm
        samples = np.frombuffer(pcm, dtype=_PCM16)
        return self._stream.resample_chunk(samples).tobytes()

    def flush(self) -> bytes:
        """Return the delayed tail at the end of the stream; ready for a new stream after."""
        if self._doubler is not None:
            return self._doubler.flush()
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
