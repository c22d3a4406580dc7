"""Streaming sample-rate conversion of 16-bit mono PCM, between any two rates.

Clients send at one of the protocol's rates (voice.protocol), but voices speak at their own: espeak-ng
at 22,050 Hz, others at 16 or 24 kHz. soxr converts any ratio, so any rate a provider produces is
accepted here; only rates no audio stream can have are refused.

A caller's audio (8 → 16 kHz) takes a polyphase windowed-sinc filter instead (``IntegerRatioStream``):
soxr's streaming mode holds its output back in blocks — measured at 20 ms chunks, 8 → 16 kHz lagged
64 ms on average (up to 115 ms) — and every millisecond of it is a millisecond later that a caller's
barge-in is heard and their turn's end detected. The filter (half-band: one of its two output phases is
the input itself) delays by 2.4 ms and holds nothing back, for about twice soxr's CPU per 20 ms frame.
Other conversions stay on soxr, where its lag costs less than the filter's CPU would: the reply's
24 → 8 kHz for the phone (45 ms on average, before the caller hears the first word; the filter cost 4×
soxr per chunk, and at 200 calls the phone path is short of CPU) and a browser's 48 → 16 kHz (21 ms; 6×).
"""

from collections.abc import AsyncIterator

import numpy as np
import soxr

from voice.audio.frames import SAMPLE_WIDTH

MIN_RATE = 1000
MAX_RATE = 384_000

# "HQ" on purpose: measured on one core it costs the same as "MQ"/"LQ" (about 8 µs per
# 20 ms at 48 kHz -> 16 kHz), keeps the passband flat to 7 kHz (LQ is -13 dB at 7 kHz,
# which speech recognition hears) and has the lowest steady-state delay (about 12 ms,
# vs 30 ms for "MQ").
QUALITY = "HQ"

_PCM16 = np.dtype("<i2")
MAX_INTEGER_RATIO = 6
# The conversions that take IntegerRatioStream: the phone's (see the module's docstring).
LOW_LATENCY_PAIRS = frozenset({(8000, 16000)})
STOPBAND_DB = 60.0  # the filter's attenuation of what would fold back (images or aliases)


class IntegerRatioStream:
    """Up by L or down by M (an integer, 2..MAX_INTEGER_RATIO) through one linear-phase low-pass filter
    at the higher rate: a Kaiser-windowed sinc whose stopband starts at the lower rate's Nyquist
    frequency, its transition 10 % of the lower rate (at most 1 kHz): flat to 3.2 kHz for 8 kHz, to
    7 kHz for 16 kHz. Polyphase: only the samples kept are computed. The filter's delay (half its length,
    ``delay_ms``) is dropped at the start, so output sample k is the input at k / out_rate, as soxr's;
    the stream holds back only that delay, and ``flush`` returns it."""

    __slots__ = (
        "_branches",
        "_copies",
        "_down",
        "_history",
        "_lead",
        "_phase",
        "_received",
        "_sent",
        "_up",
        "delay_ms",
        "in_rate",
        "out_rate",
        "taps",
    )

    def __init__(self, in_rate: int, out_rate: int) -> None:
        high, low = max(in_rate, out_rate), min(in_rate, out_rate)
        if high % low or not 2 <= high // low <= MAX_INTEGER_RATIO:
            raise ValueError(f"{in_rate} -> {out_rate} Hz is not an integer ratio of 2 to {MAX_INTEGER_RATIO}")
        self.in_rate, self.out_rate = in_rate, out_rate
        ratio = high // low
        self._up, self._down = (ratio, 1) if out_rate > in_rate else (1, ratio)
        transition = min(1000.0, 0.1 * low)
        # -6 dB at the cutoff. Down: the stopband begins at low / 2 (nothing aliases). Up by 2: a half-band
        # filter, cut at low / 2 itself, so that every other tap is zero and one of the two output phases
        # is the input as it is (half the work); the band edge's images are what a phone line never carries.
        cutoff = low / 2 if self._up == 2 else low / 2 - transition / 2
        needed = int(np.ceil((STOPBAND_DB - 7.95) / (2.285 * 2 * np.pi * transition / high)))
        # Odd length 2·half + 1, half a whole number of output samples: the delay is exact, no half sample.
        half = -(-needed // (2 * ratio)) * ratio
        n = np.arange(2 * half + 1) - half
        window = np.kaiser(2 * half + 1, 0.1102 * (STOPBAND_DB - 8.7))
        taps = 2 * cutoff / high * np.sinc(2 * cutoff / high * n) * window
        taps *= self._up / taps.sum()  # unity gain (an upsampler's zeros take 1 - 1/L of the energy)
        taps = np.concatenate((taps, np.zeros(ratio - 1)))  # whole polyphase branches (the zeros add no delay)
        count = len(taps)
        self.taps = taps
        self.delay_ms = half / high * 1000
        self._branches = [taps[offset::ratio].astype(np.float32) for offset in range(ratio)]
        # A branch with one tap (a half-band filter's centre phase) is a delayed copy: (its tap, its gain).
        self._copies = {
            phase: (int(np.flatnonzero(np.abs(branch) > 1e-9)[0]), float(branch[np.abs(branch) > 1e-9][0]))
            for phase, branch in enumerate(self._branches)
            if self._up > 1 and np.count_nonzero(np.abs(branch) > 1e-9) == 1
        }
        # The input the filter still needs: its span in input samples.
        self._history = np.zeros(count // self._up - 1 if self._up > 1 else count - 1, dtype=np.float32)
        self._reset()

    def _reset(self) -> None:
        self._history[:] = 0
        self._phase = 0  # down: input samples to skip before the next kept one
        self._lead = round(self.delay_ms * self.out_rate / 1000)  # output samples of the filter's delay to drop
        self._received = self._sent = 0  # input and output samples since the stream began

    def process(self, samples: np.ndarray) -> np.ndarray:
        x = np.concatenate((self._history, samples))
        keep = len(self._history)
        if self._up > 1:
            out = np.empty(len(samples) * self._up, dtype=np.float32)
            for phase, branch in enumerate(self._branches):
                if phase in self._copies:
                    tap, gain = self._copies[phase]
                    start = len(branch) - 1 - tap
                    out[phase :: self._up] = x[start : start + len(samples)] * gain
                else:
                    out[phase :: self._up] = np.convolve(x, branch, "valid")
        else:
            # Down: only every M-th input position, as M polyphase convolutions of 1/M of the input each:
            # out[k] = sum over offset and i of h[i·M + offset] · x[k·M - i·M - offset].
            start = self._phase
            kept = (len(samples) - start + self._down - 1) // self._down
            out = np.zeros(kept, dtype=np.float32)
            for offset, branch in enumerate(self._branches):
                first = keep + start - offset - (len(branch) - 1) * self._down
                lane = x[first : first + (kept + len(branch) - 1) * self._down : self._down]
                out += np.convolve(lane, branch, "valid")[:kept]
            self._phase = (start - len(samples)) % self._down
        self._history = x[len(x) - keep :]
        if self._lead:
            dropped = min(self._lead, len(out))
            out, self._lead = out[dropped:], self._lead - dropped
        self._received += len(samples)
        self._sent += len(out)
        np.rint(out, out=out)
        np.clip(out, -32768, 32767, out=out)
        return out.astype(_PCM16)

    def flush(self) -> np.ndarray:
        """What the stream held back (the filter's delay), then a fresh stream."""
        owed = round(self._received * self.out_rate / self.in_rate) - self._sent
        pushed = np.zeros(-(-max(owed, 0) * self.in_rate // self.out_rate) + self._down, dtype=np.float32)
        tail = self.process(pushed)[: max(owed, 0)]
        self._reset()
        return tail


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
        self._stream: soxr.ResampleStream | IntegerRatioStream | None = None
        if (in_rate, out_rate) in LOW_LATENCY_PAIRS:
            self._stream = IntegerRatioStream(in_rate, out_rate)
        elif in_rate != out_rate:
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, "int16", QUALITY)

    def process(self, pcm: bytes) -> bytes:
        """Resample the next chunk; output lags input by the filter delay (a few ms)."""
        if len(pcm) % SAMPLE_WIDTH:
            raise ValueError(f"PCM chunk must hold whole 16-bit samples, got {len(pcm)} bytes")
        if self._stream is None or not pcm:
            return pcm
        samples = np.frombuffer(pcm, dtype=_PCM16)
        if isinstance(self._stream, IntegerRatioStream):
            return self._stream.process(samples).tobytes()
        return self._stream.resample_chunk(samples).tobytes()

    def flush(self) -> bytes:
        """Return the delayed tail at the end of the stream; ready for a new stream after."""
        if self._stream is None:
            return b""
        if isinstance(self._stream, IntegerRatioStream):
            return self._stream.flush().tobytes()
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
