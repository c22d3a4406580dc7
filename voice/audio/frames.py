"""Cutting a PCM byte stream into fixed-size frames."""

SAMPLE_WIDTH = 2  # bytes per sample: 16-bit little-endian mono
PIPELINE_RATE = 16000  # what the pipeline hears at, unless the client's audio is narrowband (below)
NARROWBAND_RATE = 8000  # a phone's audio: heard at its own rate, with nothing above 4 kHz to gain
FRAME_MS = 20
FRAME_BYTES = 640  # 20 ms at 16 kHz, 16-bit mono


def ms_to_bytes(ms: float, rate: int = PIPELINE_RATE) -> int:
    """Bytes of 16-bit mono audio lasting `ms` at `rate` (whole samples)."""
    return int(ms * rate // 1000) * SAMPLE_WIDTH


def frame_bytes(rate: int) -> int:
    """Bytes of one 20 ms frame at ``rate``."""
    return ms_to_bytes(FRAME_MS, rate)


def bytes_to_ms(n: int, rate: int = PIPELINE_RATE) -> float:
    """Duration in ms of `n` bytes of 16-bit mono audio at `rate`."""
    return n / SAMPLE_WIDTH * 1000 / rate


class Reframer:
    """Turns arbitrary PCM chunks into frames of exactly `frame_bytes`."""

    __slots__ = ("_buffer", "_frame_bytes")

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        if frame_bytes <= 0 or frame_bytes % SAMPLE_WIDTH:
            raise ValueError(f"frame_bytes must be a positive multiple of {SAMPLE_WIDTH}, got {frame_bytes}")
        self._frame_bytes = frame_bytes
        self._buffer = bytearray()

    @property
    def frame_bytes(self) -> int:
        return self._frame_bytes

    @property
    def pending_bytes(self) -> int:
        """Bytes held back until the next frame is complete."""
        return len(self._buffer)

    def push(self, data: bytes) -> list[bytes]:
        """Add audio; return every frame now complete, oldest first."""
        size = self._frame_bytes
        buffer = self._buffer
        if not buffer and not len(data) % size:  # whole frames, nothing waiting: the usual case, no copies
            data = bytes(data)
            return [data] if len(data) == size else [data[i : i + size] for i in range(0, len(data), size)]
        buffer += data
        usable = len(buffer) - len(buffer) % size
        if not usable:
            return []
        with memoryview(buffer) as view:
            frames = [view[i : i + size].tobytes() for i in range(0, usable, size)]
        del buffer[:usable]
        return frames

    def clear(self) -> None:
        """Drop any partial frame."""
        self._buffer.clear()
