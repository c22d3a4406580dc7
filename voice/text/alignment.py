"""What the visitor actually heard of a reply, from how much of its audio was played."""

from collections.abc import Sequence
from dataclasses import dataclass

from voice.audio.frames import bytes_to_ms


@dataclass(slots=True)
class SpokenSegment:
    """A TTS chunk of the reply: the text it speaks and its place in the reply's audio."""

    text: str
    start_ms: float
    duration_ms: float

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.duration_ms


def _words_heard(text: str, fraction: float) -> list[str]:
    """Words of `text` that end within the first `fraction` of it, by character count."""
    cut = fraction * len(text)
    heard: list[str] = []
    position = 0
    for word in text.split():
        position = text.index(word, position) + len(word)
        if position > cut:
            break
        heard.append(word)
    return heard


def heard_text(segments: Sequence[SpokenSegment], played_ms: float) -> str:
    """Text heard when playback stopped at `played_ms`: whole words only, single-spaced.

    Segments that ended are heard in full; in the segment being played, a word counts
    once its last character falls within the played share of the segment's characters
    (characters stand in for speech time).
    """
    if played_ms <= 0:
        return ""
    words: list[str] = []
    for segment in segments:
        if segment.end_ms <= played_ms:
            words += segment.text.split()
            continue
        if segment.start_ms < played_ms:
            words += _words_heard(segment.text, (played_ms - segment.start_ms) / segment.duration_ms)
        break
    return " ".join(words)


class SpeechTimeline:
    """The reply's segments in playback order, timed by the audio TTS produced for them."""

    __slots__ = ("_rate", "segments")

    def __init__(self) -> None:
        self.segments: list[SpokenSegment] = []
        self._rate = 0

    @property
    def total_ms(self) -> float:
        """Duration of all audio queued so far."""
        return self.segments[-1].end_ms if self.segments else 0.0

    @property
    def text(self) -> str:
        """Everything queued, single-spaced."""
        return " ".join(word for segment in self.segments for word in segment.text.split())

    def add(self, text: str, audio_bytes: int, sample_rate: int) -> None:
        """Start a new segment speaking `text` with its first `audio_bytes` of 16-bit mono audio."""
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self._rate = sample_rate
        self.segments.append(SpokenSegment(text, self.total_ms, bytes_to_ms(audio_bytes, sample_rate)))

    def extend_audio(self, audio_bytes: int) -> None:
        """Grow the last segment by more of its audio (same sample rate as its `add`)."""
        if not self.segments:
            raise ValueError("no segment to extend: call add() first")
        self.segments[-1].duration_ms += bytes_to_ms(audio_bytes, self._rate)

    def heard(self, played_ms: float) -> str:
        """Text heard when playback stopped at `played_ms`."""
        return heard_text(self.segments, played_ms)
