"""The phone's audio: µ-law by lookup tables against G.711's reference code, and the rate conversions
in (8 → 16 kHz) and out (24 → 8 kHz) without seams at chunk boundaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from voice.audio.mulaw import DECODE_TABLE, ENCODE_TABLE, pcm_to_ulaw, ulaw_to_pcm
from voice.audio.phone import PHONE_FRAME_BYTES, PHONE_RATE, PhoneAudioOut
from voice.audio.resample import StreamResampler

AMPLITUDE = 8_000
TONE_HZ = 1000
IRREGULAR_CHUNKS = (7, 333, 960, 1, 50, 2048, 3, 441)  # samples


# G.711's reference code (Sun Microsystems' g711.c), one sample at a time, as published.
_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def reference_linear2ulaw(sample: int) -> int:
    pcm_val = sample >> 2
    if pcm_val < 0:
        pcm_val, mask = -pcm_val, 0x7F
    else:
        mask = 0xFF
    pcm_val = min(pcm_val, 8159) + 0x21
    seg = next((i for i, end in enumerate(_SEG_UEND) if pcm_val <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm_val >> (seg + 1)) & 0xF)) ^ mask


def reference_ulaw2linear(u_val: int) -> int:
    u_val = ~u_val & 0xFF
    t = ((u_val & 0x0F) << 3) + 0x84
    t <<= (u_val & 0x70) >> 4
    return (0x84 - t) if u_val & 0x80 else (t - 0x84)


def sine(rate: int, seconds: float = 1.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


def in_chunks(data: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    pieces, position = [], 0
    for size in itertools.cycle(sizes):
        if position >= len(data):
            return pieces
        pieces.append(data[position : position + size])
        position += size
    raise AssertionError("unreachable")


def test_the_tables_hold_g711_reference_values_for_every_code_and_sample() -> None:
    assert [int(v) for v in DECODE_TABLE] == [reference_ulaw2linear(code) for code in range(256)]
    every_sample = np.arange(-32768, 32768, dtype=np.int32)
    expected = [reference_linear2ulaw(int(s)) for s in every_sample]
    assert [int(ENCODE_TABLE[s & 0xFFFF]) for s in every_sample] == expected


def test_the_standard_library_and_the_tables_give_the_same_bytes() -> None:
    """``audioop`` (C, Python 3.11-3.12) is used when present; the tables are the fallback (3.13+)."""
    from voice.audio import mulaw

    if mulaw._AUDIOOP is None:
        pytest.skip("this Python has no audioop: only the tables run")
    codes = bytes(range(256))
    every_sample = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert ulaw_to_pcm(codes) == mulaw.table_ulaw_to_pcm(codes)
    assert pcm_to_ulaw(every_sample) == mulaw.table_pcm_to_ulaw(every_sample)


def test_every_code_survives_decode_then_encode() -> None:
    codes = bytes(range(256))

    again = pcm_to_ulaw(ulaw_to_pcm(codes))

    # 0x7F is µ-law's "negative zero": it decodes to 0, which encodes as the positive zero 0xFF.
    assert [a for a, b in zip(codes, again, strict=True) if a != b] == [0x7F]
    assert again[0x7F] == 0xFF


def test_pcm_round_trip_error_stays_within_the_quantization_step() -> None:
    pcm = np.arange(-32768, 32768, dtype="<i2")

    back = samples(ulaw_to_pcm(pcm_to_ulaw(pcm.tobytes())))

    error = np.abs(back - pcm.astype(np.int32))
    magnitude = np.abs(pcm.astype(np.int32))
    # A segment's step is 1/16 of its span: the error is at most half a step, about 3 % of the value
    # (plus the finest step near silence); only the clipped extremes go past it.
    unclipped = magnitude < 32000
    assert np.all(error[unclipped] <= magnitude[unclipped] * 0.032 + 8)
    assert len(ulaw_to_pcm(b"\x00" * 160)) == 320 and len(pcm_to_ulaw(b"\x00" * 320)) == 160


def test_odd_byte_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="whole 16-bit samples"):
        pcm_to_ulaw(b"\x00\x01\x02")


def test_caller_audio_in_twilio_frames_reaches_16_khz_like_one_piece() -> None:
    # given a 1 kHz tone as a caller's µ-law stream, cut into Twilio's 20 ms media payloads
    wire = pcm_to_ulaw(sine(PHONE_RATE))
    frames = in_chunks(wire, (PHONE_FRAME_BYTES,))

    # when each frame is decoded and resampled on its own, and the whole stream at once
    resampler = StreamResampler(PHONE_RATE, 16000)
    chunked = samples(b"".join(resampler.process(ulaw_to_pcm(f)) for f in frames) + resampler.flush())
    once = StreamResampler(PHONE_RATE, 16000)
    whole = samples(once.process(ulaw_to_pcm(wire)) + once.flush())

    # then both agree (soxr dithers by a bit or two) and twice as many samples came out
    assert abs(len(chunked) - len(whole)) <= 2
    size = min(len(chunked), len(whole))
    assert np.max(np.abs(chunked[:size] - whole[:size])) <= 2
    assert abs(len(chunked) - 2 * len(wire)) <= 2


def test_reply_audio_in_irregular_chunks_reaches_the_phone_without_seams() -> None:
    # given a reply's 24 kHz audio arriving in irregular pieces
    tone = sine(24000)
    pieces = in_chunks(tone, tuple(2 * n for n in IRREGULAR_CHUNKS))

    # when it is converted piece by piece, and in one call
    out = PhoneAudioOut()
    chunked_wire = b"".join(out.process(piece) for piece in pieces) + out.flush()
    once = PhoneAudioOut()
    whole_wire = once.process(tone) + once.flush()
    chunked, whole = samples(ulaw_to_pcm(chunked_wire)), samples(ulaw_to_pcm(whole_wire))

    # then the two agree within one µ-law step, a third as many samples came out, at the same pitch,
    # and no sample jumps further than the sine's slope and a quantization step allow
    assert abs(len(chunked_wire) - len(tone) // 2 / 3) <= 2
    size = min(len(chunked), len(whole))
    assert np.max(np.abs(chunked[:size] - whole[:size])) <= AMPLITUDE * 0.032 + 8
    spectrum = np.abs(np.fft.rfft(chunked * np.hanning(len(chunked))))
    assert np.argmax(spectrum) * PHONE_RATE / len(chunked) == pytest.approx(TONE_HZ, abs=2)
    edge = PHONE_RATE // 100
    max_step = AMPLITUDE * 2 * np.pi * TONE_HZ / PHONE_RATE
    assert np.max(np.abs(np.diff(chunked[edge:-edge]))) <= max_step * 1.01 + 2 * (AMPLITUDE * 0.032 + 8)


def test_twilios_20_ms_messages_reach_the_pipeline_40_ms_at_a_time() -> None:
    from voice.audio.phone import PhoneAudioIn

    audio_in = PhoneAudioIn()
    first, second = bytes(range(160)), bytes(range(96, 256))

    assert audio_in.push(first) is None  # waits for the next message
    assert audio_in.push(second) == ulaw_to_pcm(first + second)
    assert audio_in.push(b"\xff" * 400) == ulaw_to_pcm(b"\xff" * 400)  # 40 ms or more goes at once
    assert audio_in.push(first) is None
    audio_in.drop()
    assert audio_in.push(second) is None  # the dropped half is not heard with it
