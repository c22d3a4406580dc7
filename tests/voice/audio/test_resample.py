import itertools
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voice.audio.resample import StreamResampler
from voice.protocol import SUPPORTED_INPUT_RATES

AMPLITUDE = 10_000
TONE_HZ = 1000
IRREGULAR_CHUNKS = (7, 333, 960, 1, 50, 2048, 3, 441)  # samples


def sine(rate: int, seconds: float = 1.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


def resample_in_chunks(pcm: bytes, in_rate: int, out_rate: int, chunks: tuple[int, ...]) -> bytes:
    resampler = StreamResampler(in_rate, out_rate)
    out = []
    position = 0
    for size in itertools.cycle(chunks):
        if position >= len(pcm):
            break
        out.append(resampler.process(pcm[position : position + size * 2]))
        position += size * 2
    out.append(resampler.flush())
    return b"".join(out)


# The clients' rates to the pipeline's, and the voices' own rates to the output's: espeak-ng speaks at
# 22,050 Hz (and 11,025 with some voices), other servers at 16 or 44.1 kHz.
VOICE_RATES = [(22050, 24000), (11025, 24000), (44100, 24000), (16000, 24000)]
CONVERSIONS = [(rate, 16000) for rate in SUPPORTED_INPUT_RATES if rate != 16000] + [(16000, 48000), *VOICE_RATES]


@pytest.mark.parametrize(("in_rate", "out_rate"), CONVERSIONS)
def test_chunked_resampling_matches_one_call_without_clicks(in_rate: int, out_rate: int) -> None:
    # given a 1 kHz sine
    tone = sine(in_rate)

    # when it is resampled in irregular chunks, and in one call
    chunked = samples(resample_in_chunks(tone, in_rate, out_rate, IRREGULAR_CHUNKS))
    whole = samples(resample_in_chunks(tone, in_rate, out_rate, (len(tone),)))

    # then both agree within 2 LSB, and past the tone's abrupt onset and end (10 ms each),
    # no sample jumps further than the sine's steepest slope allows
    size = min(len(chunked), len(whole))
    assert abs(len(chunked) - len(whole)) <= 2
    assert np.max(np.abs(chunked[:size] - whole[:size])) <= 2
    edge = out_rate // 100
    max_step = AMPLITUDE * 2 * np.pi * TONE_HZ / out_rate
    assert np.max(np.abs(np.diff(chunked[edge:-edge]))) <= max_step * 1.01 + 2


@pytest.mark.parametrize(("in_rate", "out_rate"), CONVERSIONS)
def test_output_length_and_pitch_follow_the_rate_ratio(in_rate: int, out_rate: int) -> None:
    tone = sine(in_rate)

    out = samples(resample_in_chunks(tone, in_rate, out_rate, (in_rate // 50,)))

    expected = len(tone) // 2 * out_rate / in_rate
    assert abs(len(out) - expected) <= 2
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak_hz = np.argmax(spectrum) * out_rate / len(out)
    assert peak_hz == pytest.approx(TONE_HZ, abs=2)


def test_equal_rates_pass_audio_through_without_copying() -> None:
    resampler = StreamResampler(16000, 16000)
    pcm = sine(16000, 0.02)

    assert resampler.process(pcm) is pcm
    assert resampler.flush() == b""


def test_flush_makes_the_resampler_ready_for_a_new_stream() -> None:
    resampler = StreamResampler(48000, 16000)
    tone = sine(48000, 0.2)
    first = resampler.process(tone) + resampler.flush()

    second = resampler.process(tone) + resampler.flush()

    assert len(first) == len(second)
    assert np.max(np.abs(samples(first) - samples(second))) <= 2  # soxr dithers int16 output


@pytest.mark.parametrize(
    ("in_rate", "out_rate"), [(0, 16000), (-22050, 24000), (16000, 999), (10**7, 24000), (22050.5, 24000)]
)
def test_rates_no_audio_stream_has_are_rejected(in_rate, out_rate) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        StreamResampler(in_rate, out_rate)


def test_espeaks_rate_converts_to_the_output_rate_in_one_stream() -> None:
    """The keyless demo's voice: espeak-ng's 22,050 Hz WAV, streamed to 24 kHz (it was refused)."""
    resampler = StreamResampler(22050, 24000)
    tone = sine(22050, 0.5)

    out = samples(resampler.process(tone) + resampler.flush())

    assert abs(len(out) - 12000) <= 2
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) > AMPLITUDE / 2  # a sine's RMS is amplitude / √2


def test_odd_byte_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="whole 16-bit samples"):
        StreamResampler(48000, 16000).process(b"\x00\x01\x02")


async def test_at_rate_rejoins_samples_split_across_chunks_and_converts_the_rate() -> None:
    from voice.audio.resample import at_rate

    pcm = (np.arange(4800, dtype="<i2") % 2000).tobytes()  # 0.3 s at 16 kHz

    async def odd_pieces() -> AsyncIterator[bytes]:
        for offset in range(0, len(pcm), 333):  # odd sizes: samples cut in half
            yield pcm[offset : offset + 333]

    same = [chunk async for chunk in at_rate(odd_pieces(), 16000, 16000)]
    assert all(len(chunk) % 2 == 0 for chunk in same)
    assert b"".join(same) == pcm
    converted = b"".join([chunk async for chunk in at_rate(odd_pieces(), 16000, 24000)])
    assert abs(len(converted) // 2 - 7200) <= 2  # 0.3 s at 24 kHz


# -- a phone caller's 8 kHz to the pipeline's 16 kHz: its own low-latency filter --


def test_doubling_the_rate_lags_under_two_milliseconds_at_any_chunk_size() -> None:
    """soxr's streaming mode held a caller's audio back 64 ms on average (115 ms at most) at 20 ms
    chunks: the caller's barge-in and turn end were heard that much later."""
    for chunk in (160, 320, 7, 1000):
        resampler = StreamResampler(8000, 16000)
        given = produced = 0
        worst = 0
        for _ in range(100):
            produced += len(resampler.process(b"\x01\x00" * chunk)) // 2
            given += chunk
            worst = max(worst, 2 * given - produced)
        assert worst <= 29, f"{chunk}-sample chunks: output lags {worst / 16:.1f} ms"


def test_doubling_keeps_the_telephone_band_and_leaves_no_audible_images() -> None:
    for tone_hz in (300, 1000, 2000, 2800, 3000, 3300, 3350, 3400):
        t = np.arange(8000) / 8000
        tone = (AMPLITUDE * np.sin(2 * np.pi * tone_hz * t)).astype("<i2").tobytes()

        out = samples(resample_in_chunks(tone, 8000, 16000, (160,))).astype(np.float64)[1600:-1600]

        spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
        freqs = np.fft.rfftfreq(len(out), 1 / 16000)
        level = spectrum[np.argmin(np.abs(freqs - tone_hz))]
        image = spectrum[np.argmin(np.abs(freqs - (8000 - tone_hz)))]
        rms = np.sqrt(np.mean(out**2))
        assert rms == pytest.approx(AMPLITUDE / np.sqrt(2), rel=0.01), f"{tone_hz} Hz lost level"
        assert 20 * np.log10(image / level) < -64, f"{tone_hz} Hz: its image at {8000 - tone_hz} Hz is audible"


def test_doubling_a_full_scale_square_wave_clips_instead_of_wrapping() -> None:
    square = np.tile(np.array([32767] * 8 + [-32768] * 8, dtype="<i2"), 100).tobytes()

    out = samples(resample_in_chunks(square, 8000, 16000, (160,)))

    assert np.max(np.abs(np.diff(out))) < 65535 * 0.8  # a wrapped sample would jump the whole range
    assert out.max() == 32767 and out.min() == -32768


def test_doubled_samples_are_rounded_like_the_exact_filter() -> None:
    from voice.audio.resample import _HALF_BAND, _HISTORY

    tone = (AMPLITUDE * np.sin(2 * np.pi * 1234 * np.arange(800) / 8000)).astype("<i2")

    out = samples(StreamResampler(8000, 16000).process(tone.tobytes()))

    exact = np.convolve(np.concatenate((np.zeros(_HISTORY), tone.astype(np.float64))), _HALF_BAND, "valid")
    # The filtered phase: even output samples, which after the 29 dropped ones sit at odd places.
    computed = out[1::2]
    first = (_HISTORY + 1) // 2
    assert np.array_equal(computed, np.rint(exact[first : first + len(computed)]).astype(np.int64))


def test_only_telephone_audio_takes_the_telephone_filter() -> None:
    """12 -> 24 kHz (a voice at 12 kHz) stays with soxr: the telephone filter would cut it at 5 kHz."""
    t = np.arange(12000) / 12000
    tone = (AMPLITUDE * np.sin(2 * np.pi * 5500 * t)).astype("<i2").tobytes()

    out = samples(resample_in_chunks(tone, 12000, 24000, (240,))).astype(np.float64)[2400:-2400]

    assert np.sqrt(np.mean(out**2)) == pytest.approx(AMPLITUDE / np.sqrt(2), rel=0.05)


def test_a_phone_stream_of_any_length_doubles_exactly_after_its_flush() -> None:
    for count in (0, 1, 5, 14, 15, 29, 30, 161):
        resampler = StreamResampler(8000, 16000)
        pcm = (np.arange(count) * 97).astype("<i2").tobytes()

        out = resampler.process(pcm) + resampler.flush()

        assert len(out) == 2 * len(pcm), f"{count} samples"


def test_doubling_in_chunks_of_changing_sizes_gives_the_exact_filter_of_the_whole_stream() -> None:
    """The filter keeps its input and history in buffers it reuses while the chunk size stays the same
    and remakes when it changes: any sequence of sizes must give the one-shot result, loud input clipped."""
    from voice.audio.resample import _DELAY, _HALF_BAND, _HISTORY

    loud = np.random.default_rng(7).normal(0, 20000, 9000).clip(-32768, 32767).astype("<i2")
    resampler = StreamResampler(8000, 16000)
    pieces, offset, sizes = [], 0, (320, 320, 7, 7, 7, 1, 1, 1000, 320, 320, 13, 13, 320, 28, 28, 30, 30)
    for size in sizes * 3:  # small sizes repeated: the history slides within the buffer it overlaps
        pieces.append(resampler.process(loud[offset : offset + size].tobytes()))
        offset += size
    pieces.append(resampler.flush())
    out = samples(b"".join(pieces))

    # the whole stream at once, with the zeros flush feeds in after it to push the tail out
    tail = _HISTORY // 2 + 1
    signal = np.concatenate((np.zeros(_HISTORY), loud[:offset].astype(np.float64), np.zeros(tail)))
    exact = np.empty(2 * (offset + tail))
    exact[0::2] = np.clip(np.rint(np.convolve(signal, _HALF_BAND, "valid")), -32768, 32767)
    exact[1::2] = signal[_HISTORY // 2 + 1 : _HISTORY // 2 + 1 + offset + tail]
    assert len(out) == 2 * offset  # exactly twice the input, the flushed tail included
    assert np.array_equal(out, exact[_DELAY : _DELAY + 2 * offset].astype(np.int64))
