"""G.711 µ-law ⇄ 16-bit PCM (the phone's 8 kHz audio).

The standard library's ``audioop`` (C) converts when it is there: Python 3.11 and 3.12, which is what
runs. It is deprecated and gone in Python 3.13, so the same conversion is kept as lookup tables:
decoding indexes a 256-entry table with each byte, encoding a 65,536-entry table with each sample read
as unsigned, one numpy gather each. At 200 calls (50 µ-law messages a second each) the gather was 7 %
of the server's loop: on one core, ``audioop`` decodes 40 ms in 0.4 µs, the gather in 3 µs
(``bench.phone`` prints ``mu_law_us_per_frame``). Both give the same bytes (tests/voice/audio).

The tables follow ITU-T G.711's reference code (Sun's ``g711.c``: 14-bit magnitudes, bias 0x21,
bits inverted on the wire), byte for byte the values of ``audioop.lin2ulaw``/``ulaw2lin``.
"""

from __future__ import annotations

import sys
import warnings
from types import ModuleType

import numpy as np

from voice.audio.frames import SAMPLE_WIDTH

_BIAS = 0x84
_CLIP = 32635
_BIAS_14 = 0x21
_CLIP_14 = 8159
_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_PCM16 = np.dtype("<i2")


def _decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32)
    inverted = ~codes & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(inverted & 0x80, -magnitude, magnitude).astype(_PCM16)


def _encode_table() -> np.ndarray:
    # On 14-bit magnitudes, as G.711's reference code (and audioop) does: x >> 2, then the sign.
    samples = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32) >> 2
    mask = np.where(samples < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(samples), _CLIP_14) + _BIAS_14
    # The segment: how many of the bounds 0x3F, 0x7F, … 0x1FFF the biased magnitude exceeds; past the
    # last one (only the clipped maximum) the code is the largest, 0x7F.
    segment = sum((magnitude > bound).astype(np.int32) for bound in _SEGMENT_ENDS)
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = np.where(segment > 7, 0x7F, (segment << 4) | mantissa)
    return (code ^ mask).astype(np.uint8)


DECODE_TABLE = _decode_table()  # µ-law byte → int16 sample
ENCODE_TABLE = _encode_table()  # int16 sample (as uint16) → µ-law byte


def _standard_library() -> ModuleType | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop  # only where it still exists
        except ModuleNotFoundError:
            return None
    return audioop if sys.byteorder == "little" else None  # audioop reads and writes the machine's order


_AUDIOOP = _standard_library()


def table_ulaw_to_pcm(ulaw: bytes) -> bytes:
    return DECODE_TABLE[np.frombuffer(ulaw, dtype=np.uint8)].tobytes()


def table_pcm_to_ulaw(pcm: bytes) -> bytes:
    return ENCODE_TABLE[np.frombuffer(pcm, dtype=_PCM16).view(np.uint16)].tobytes()


def ulaw_to_pcm(ulaw: bytes) -> bytes:
    """µ-law bytes → 16-bit little-endian PCM (twice as long)."""
    if _AUDIOOP is not None:
        return _AUDIOOP.ulaw2lin(ulaw, SAMPLE_WIDTH)
    return table_ulaw_to_pcm(ulaw)


def pcm_to_ulaw(pcm: bytes) -> bytes:
    """16-bit little-endian PCM (whole samples) → µ-law bytes (half as long)."""
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"PCM must hold whole 16-bit samples, got {len(pcm)} bytes")
    if _AUDIOOP is not None:
        return _AUDIOOP.lin2ulaw(pcm, SAMPLE_WIDTH)
    return table_pcm_to_ulaw(pcm)
