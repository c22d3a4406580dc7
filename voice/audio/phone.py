"""The phone's audio: 8 kHz µ-law on the wire, the pipeline's rates inside.

In: µ-law → 8 kHz PCM, which ``voice.pipeline.input.AudioInput`` resamples to 16 kHz like any other
client rate. Out: the reply's 24 kHz PCM → 8 kHz (the same ``StreamResampler``, its filter state
kept across chunks) → µ-law.
"""

from __future__ import annotations

from voice.audio.mulaw import pcm_to_ulaw, ulaw_to_pcm
from voice.audio.resample import StreamResampler
from voice.protocol import OUTPUT_SAMPLE_RATE

PHONE_RATE = 8000
PHONE_FRAME_BYTES = 160  # 20 ms of µ-law at 8 kHz: what Twilio sends in each media message


def phone_to_pcm(ulaw: bytes) -> bytes:
    """A caller's µ-law chunk as 8 kHz 16-bit PCM."""
    return ulaw_to_pcm(ulaw)


class PhoneAudioOut:
    """One reply's audio for the phone: 24 kHz PCM chunks in, 8 kHz µ-law chunks out, continuously."""

    __slots__ = ("_resampler",)

    def __init__(self, in_rate: int = OUTPUT_SAMPLE_RATE) -> None:
        self._resampler = StreamResampler(in_rate, PHONE_RATE)

    def process(self, pcm: bytes) -> bytes:
        return pcm_to_ulaw(self._resampler.process(pcm))

    def flush(self) -> bytes:
        """The resampler's delayed tail, at the end of the reply."""
        return pcm_to_ulaw(self._resampler.flush())
