"""The phone's audio: 8 kHz µ-law on the wire, the pipeline's rates inside.

In: µ-law → 8 kHz PCM, 40 ms at a time (``PhoneAudioIn``), which ``voice.pipeline.input.AudioInput``
hears at 8 kHz (with Silero, brought up to 16 kHz). Out: the reply's 24 kHz PCM → 8 kHz (the same
``StreamResampler``, its filter state kept across chunks) → µ-law.
"""

from __future__ import annotations

from voice.audio.mulaw import pcm_to_ulaw, ulaw_to_pcm
from voice.audio.resample import PHONE_RATE, StreamResampler
from voice.protocol import OUTPUT_SAMPLE_RATE

PHONE_FRAME_BYTES = 160  # 20 ms of µ-law at 8 kHz: what Twilio sends in each media message
PHONE_INPUT_BYTES = 2 * PHONE_FRAME_BYTES  # what the pipeline hears at once: 40 ms, as a widget sends


class PhoneAudioIn:
    """A caller's µ-law, which Twilio sends 20 ms a message, handed to the pipeline 40 ms at a time.

    At 50 messages a second per call, the pipeline's fixed cost per call (admission, the turn's
    bookkeeping, one resampling and one µ-law call) was most of a phone call's CPU; in pairs it is paid
    half as often, as a widget's 40 ms frames pay it. The first of a pair waits for the second: 20 ms.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = b""

    def push(self, ulaw: bytes) -> bytes | None:
        """The 8 kHz PCM to hear now, or None while less than 40 ms waits for the next message."""
        audio = self._held + ulaw if self._held else ulaw
        if len(audio) < PHONE_INPUT_BYTES:
            self._held = audio
            return None
        self._held = b""
        return ulaw_to_pcm(audio)

    def drop(self) -> None:
        """Forget what waits (the message that brought it was refused)."""
        self._held = b""


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
