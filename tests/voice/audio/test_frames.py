import pytest

from voice.audio.frames import FRAME_BYTES, FRAME_MS, PIPELINE_RATE, Reframer, bytes_to_ms, ms_to_bytes


def test_pipeline_frame_is_20_ms_of_16_khz_pcm() -> None:
    assert ms_to_bytes(FRAME_MS, PIPELINE_RATE) == FRAME_BYTES == 640
    assert bytes_to_ms(FRAME_BYTES, PIPELINE_RATE) == FRAME_MS


@pytest.mark.parametrize(("ms", "rate", "expected"), [(20, 8000, 320), (10, 44100, 882), (1000, 48000, 96000)])
def test_ms_to_bytes_counts_whole_samples(ms: int, rate: int, expected: int) -> None:
    assert ms_to_bytes(ms, rate) == expected
    assert bytes_to_ms(expected, rate) == pytest.approx(ms, abs=1000 / rate)


def test_reframer_returns_exact_frames_and_keeps_the_remainder() -> None:
    # given a reframer for 640-byte frames
    reframer = Reframer(FRAME_BYTES)
    audio = bytes(range(256)) * 10  # 2560 bytes = 4 frames

    # when audio arrives in uneven chunks
    frames = reframer.push(audio[:100]) + reframer.push(audio[100:1000])
    pending = reframer.pending_bytes
    frames += reframer.push(audio[1000:])

    # then frames are exact, in order, and nothing is lost or duplicated
    assert pending == 1000 - 640
    assert [len(frame) for frame in frames] == [FRAME_BYTES] * 4
    assert b"".join(frames) == audio
    assert reframer.pending_bytes == 0


@pytest.mark.parametrize("chunk", [1, 2, 7, 639, 640, 641, 1280, 5000])
def test_reframer_output_does_not_depend_on_chunk_size(chunk: int) -> None:
    audio = bytes(i % 251 for i in range(10_000))
    reframer = Reframer(FRAME_BYTES)

    frames = [frame for i in range(0, len(audio), chunk) for frame in reframer.push(audio[i : i + chunk])]

    assert b"".join(frames) == audio[: len(audio) // FRAME_BYTES * FRAME_BYTES]
    assert all(len(frame) == FRAME_BYTES for frame in frames)
    assert reframer.pending_bytes == len(audio) % FRAME_BYTES


def test_reframer_clear_drops_the_partial_frame() -> None:
    reframer = Reframer(4)
    reframer.push(b"abc")

    reframer.clear()

    assert reframer.pending_bytes == 0
    assert reframer.push(b"defg") == [b"defg"]


def test_reframer_passes_an_exact_frame_through_unchanged() -> None:
    frame = bytes(FRAME_BYTES)
    assert Reframer(FRAME_BYTES).push(frame)[0] is frame


@pytest.mark.parametrize("frame_bytes", [0, -2, 3])
def test_reframer_rejects_sizes_that_are_not_whole_samples(frame_bytes: int) -> None:
    with pytest.raises(ValueError, match="frame_bytes"):
        Reframer(frame_bytes)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_whole_frames_at_once_come_back_as_bytes_in_order(kind: type) -> None:
    audio = bytes(i % 251 for i in range(3 * FRAME_BYTES))
    frames = Reframer(FRAME_BYTES).push(kind(audio))
    assert [type(frame) for frame in frames] == [bytes] * 3
    assert b"".join(frames) == audio
