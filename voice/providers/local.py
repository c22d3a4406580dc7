"""Offline speech-to-text with PocketSphinx (its English model ships inside the wheel).

Less accurate than a hosted model, but real: the keyless demo and the end-to-end tests hear what
was said. Decoding is CPU work, so it runs in a thread, on a small pool of decoders.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator

from voice.audio.resample import StreamResampler
from voice.providers.base import ErrorKind, ProviderError, SpeechToText, Transcript

LOCAL = "local"
MODEL_RATE = 16000  # the rate of the English model that ships in the wheel
_POOL_SIZE = 2


class _DecoderPool:
    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._created = 0
        self._lock = threading.Lock()

    def acquire(self) -> object:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < _POOL_SIZE:
                self._created += 1
                from pocketsphinx import Decoder

                return Decoder(samprate=MODEL_RATE, loglevel="FATAL")
        return self._idle.get()

    def release(self, decoder: object) -> None:
        self._idle.put(decoder)


_pool = _DecoderPool()


def is_available() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


def _decode_at_model_rate(resampler: StreamResampler, pcm: bytes) -> str:
    """PocketSphinx's English model is a 16 kHz one: a phone's 8 kHz is brought up to it (in this thread)."""
    if resampler.in_rate != resampler.out_rate:
        pcm = resampler.process(pcm[: len(pcm) - len(pcm) % 2]) + resampler.flush()
    return _decode(pcm)


def _decode(pcm: bytes) -> str:
    decoder = _pool.acquire()
    try:
        decoder.start_utt()  # type: ignore[attr-defined]
        decoder.process_raw(pcm, full_utt=True)  # type: ignore[attr-defined]
        decoder.end_utt()  # type: ignore[attr-defined]
        hypothesis = decoder.hyp()  # type: ignore[attr-defined]
        return hypothesis.hypstr if hypothesis else ""
    finally:
        _pool.release(decoder)


class LocalSpeechToText(SpeechToText):
    provider = LOCAL
    model = "pocketsphinx-en-us"

    async def transcribe(self, pcm: bytes, sample_rate: int, *, language: str) -> AsyncIterator[Transcript]:
        try:
            resampler = StreamResampler(sample_rate, MODEL_RATE)
        except ValueError as exc:
            raise ProviderError(ErrorKind.BAD_REQUEST, str(exc), provider=LOCAL) from None
        text = await asyncio.get_running_loop().run_in_executor(None, _decode_at_model_rate, resampler, pcm)
        yield Transcript(text=text, final=True)
