"""Turn detection: when the visitor starts and stops speaking, from 20 ms frames."""

from collections import deque
from dataclasses import dataclass, field
from math import ceil
from typing import Protocol, TypeAlias

import webrtcvad

from voice.audio.frames import FRAME_MS, NARROWBAND_RATE, PIPELINE_RATE, frame_bytes

START_RATIO = 0.8  # share of voiced frames in the last start_ms that starts speech
TRAILING_SILENCE_MS = 200  # silence kept at the end of an utterance

# High bytes of little-endian int16 samples in [-256, 255] (peak below -42 dBFS).
# A frame made only of these is "quiet": unvoiced, and never shown to webrtcvad, whose
# noise model collapses on digital silence (measured: after 3 s of zeros it called
# faint noise speech for 3 s). The check costs ~0.5 µs; it also ends webrtcvad's
# 60-100 ms hangover as soon as the audio goes quiet.
_QUIET_HIGH_BYTES = b"\x00\xff"  # voice.audio.silero checks the same range on its own arrays


_IDLE, _PENDING, _SPEAKING = 0, 1, 2

WEBRTCVAD, SILERO = "webrtcvad", "silero"
DETECTORS = (WEBRTCVAD, SILERO)
SPEECH_THRESHOLD_RANGE = (0.1, 0.95)  # Silero's speech probability threshold


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """Tuning of turn detection; all durations in ms."""

    aggressiveness: int = 2  # webrtcvad
    detector: str = WEBRTCVAD
    speech_threshold: float = 0.5  # Silero: probability that starts speech (it ends below this - 0.15)
    start_ms: int = 120
    end_silence_ms: int = 600
    pre_roll_ms: int = 300
    max_utterance_ms: int = 30000
    barge_in_min_ms: int = 250
    # Semantic end of turn (voice.pipeline.turn_end): at min_silence_ms of silence a SpeechPaused event
    # asks for a verdict on the words so far; the turn then ends after min_silence_ms (complete),
    # end_silence_ms (unsure) or max_silence_ms (unfinished). Until the verdict, it waits (at most max).
    semantic: bool = False
    min_silence_ms: int = 300
    max_silence_ms: int = 2000
    # Preemptive replies (voice.parts.turns): without semantic end of turn, a SpeechPaused event at
    # pause_ms of silence lets the reply start before the turn ends; the turn still ends at
    # end_silence_ms (nothing is held open). 0: no pause event.
    pause_ms: int = 0

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0-3, got {self.aggressiveness}")
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}")
        low, high = SPEECH_THRESHOLD_RANGE
        if not low <= self.speech_threshold <= high:
            raise ValueError(f"speech_threshold must be {low}-{high}, got {self.speech_threshold}")
        for name in ("start_ms", "end_silence_ms"):
            if getattr(self, name) < FRAME_MS:
                raise ValueError(f"{name} must be at least {FRAME_MS} ms")
        for name in ("pre_roll_ms", "barge_in_min_ms", "pause_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_utterance_ms <= self.pre_roll_ms + self.start_ms:
            raise ValueError("max_utterance_ms must exceed pre_roll_ms + start_ms")
        if self.semantic and not semantic_silences_ordered(
            self.min_silence_ms, self.end_silence_ms, self.max_silence_ms
        ):
            raise ValueError(
                f"semantic end of turn needs {FRAME_MS} ms <= min_silence_ms < end_silence_ms <= max_silence_ms"
            )


def semantic_silences_ordered(min_silence_ms: int, end_silence_ms: int, max_silence_ms: int) -> bool:
    """Semantic end of turn works only if the pause (min_silence_ms) comes a frame or more before the end
    silence: at equal lengths the turn ends at the pause, before any verdict (TurnConfig, Assistant.clean)."""
    return min_silence_ms >= FRAME_MS and _frames(min_silence_ms) < _frames(end_silence_ms) <= _frames(max_silence_ms)


def pause_frames(config: TurnConfig) -> int:
    """Frames of silence after which a SpeechPaused is sent: semantic end of turn's min_silence_ms, else
    pause_ms when it comes before the end of the turn; 0 for none."""
    if config.semantic:
        return _frames(config.min_silence_ms)
    frames = _frames(config.pause_ms) if config.pause_ms else 0
    return frames if 0 < frames < _frames(config.end_silence_ms) else 0


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The visitor started speaking; `pre_roll` is all audio of the turn so far."""

    pre_roll: bytes = field(repr=False)
    frame_index: int
    during_assistant_speech: bool


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """A pause in the visitor's speech: min_silence_ms of silence with semantic end of turn (the turn is
    held open until its verdict), else pause_ms (preemptive replies; the turn ends at end_silence_ms as
    always). `utterance` is the turn so far, as SpeechStopped would carry it; `last_voiced` (frame index of
    the last voiced frame) tells whether speech came since."""

    utterance: bytes = field(repr=False)
    frame_index: int
    last_voiced: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The turn ended; `utterance` is pre-roll + speech + up to 200 ms of silence."""

    utterance: bytes = field(repr=False)
    speech_ms: int
    frame_index: int
    capped: bool
    last_voiced: int = 0  # frame index of the turn's last voiced frame


TurnEvent: TypeAlias = SpeechStarted | SpeechPaused | SpeechStopped


def _frames(ms: int) -> int:
    return ceil(ms / FRAME_MS)


class SpeechClassifier(Protocol):
    """Voiced or not, frame by frame, with state carried across the frames of one stream."""

    name: str
    sample_rate: int  # the rate of the frames it takes

    def is_speech(self, frame: bytes) -> bool: ...

    def reset(self) -> None: ...


WEBRTCVAD_RATES = (NARROWBAND_RATE, PIPELINE_RATE)  # of webrtcvad's 8, 16, 32 and 48 kHz, the pipeline's


class WebrtcClassifier:
    """webrtcvad, with quiet frames answered without it. At 16 kHz webrtcvad first brings each frame down
    to 8 kHz, where it decides: a phone's 8 kHz frames are heard as they come."""

    __slots__ = ("_aggressiveness", "_vad", "sample_rate")
    name = WEBRTCVAD

    def __init__(self, aggressiveness: int, sample_rate: int = PIPELINE_RATE) -> None:
        if sample_rate not in WEBRTCVAD_RATES:
            raise ValueError(f"webrtcvad hears {' or '.join(map(str, WEBRTCVAD_RATES))} Hz here, not {sample_rate}")
        self._aggressiveness = aggressiveness
        self.sample_rate = sample_rate
        self._vad = webrtcvad.Vad(aggressiveness)

    def reset(self) -> None:
        self._vad = webrtcvad.Vad(self._aggressiveness)

    def is_speech(self, frame: bytes) -> bool:
        return bool(frame[1::2].translate(None, _QUIET_HIGH_BYTES)) and self._vad.is_speech(frame, self.sample_rate)


class TurnDetector:
    """Finds speech starts and ends in a stream of 20 ms frames (16-bit mono at ``sample_rate``: 16 kHz, or a
    phone's 8 kHz with webrtcvad). The audio of its events is at that rate.

    `frame_index` in events counts frames processed so far, this one included:
    `frame_index * FRAME_MS` is the stream time at the end of the frame.
    """

    __slots__ = (
        "_barge_in_frames",
        "_classifier",
        "_end_frames",
        "_flags",
        "_frame_bytes",
        "_frame_index",
        "_is_speech",
        "_keep_frames",
        "_last_voiced",
        "_max_bytes",
        "_max_silence_frames",
        "_pause_end_frames",
        "_pause_frames",
        "_ring",
        "_speech_end",
        "_speech_offset",
        "_start_voiced",
        "_state",
        "_unvoiced_run",
        "_utterance",
        "_verdict",
        "_voiced_frames",
        "_voiced_in_window",
        "assistant_speaking",
        "config",
        "detector",
        "sample_rate",
    )

    def __init__(
        self,
        config: TurnConfig | None = None,
        classifier: SpeechClassifier | None = None,
        *,
        sample_rate: int = PIPELINE_RATE,
    ) -> None:
        self.config = config = config or TurnConfig()
        if classifier is None and config.detector != WEBRTCVAD:
            raise ValueError(f"pass the {config.detector} classifier (voice.audio.silero.speech_classifier)")
        self._classifier = classifier = classifier or WebrtcClassifier(config.aggressiveness, sample_rate)
        if classifier.sample_rate != sample_rate:
            raise ValueError(f"the {classifier.name} classifier hears {classifier.sample_rate} Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self._frame_bytes = size = frame_bytes(sample_rate)
        self.detector = classifier.name
        self._is_speech = classifier.is_speech
        self.assistant_speaking = False
        start_frames = _frames(config.start_ms)
        self._start_voiced = ceil(start_frames * START_RATIO)
        self._end_frames = _frames(config.end_silence_ms)
        self._pause_frames = pause_frames(config)
        self._max_silence_frames = _frames(config.max_silence_ms)
        self._keep_frames = _frames(TRAILING_SILENCE_MS)
        self._barge_in_frames = _frames(config.barge_in_min_ms)
        self._max_bytes = _frames(config.max_utterance_ms) * size
        self._ring: deque[bytes] = deque(maxlen=_frames(config.pre_roll_ms) + start_frames)
        self._flags: deque[bool] = deque(maxlen=start_frames)
        self._utterance = bytearray()
        self._frame_index = 0
        self.reset()

    @property
    def in_speech(self) -> bool:
        """True between SpeechStarted and SpeechStopped."""
        return self._state == _SPEAKING

    def reset(self) -> None:
        """Forget any speech in progress and the VAD's adaptation; frame_index keeps counting."""
        self._classifier.reset()
        self._is_speech = self._classifier.is_speech
        self._ring.clear()
        self._flags.clear()
        self._utterance.clear()
        self._state = _IDLE
        self._voiced_in_window = 0
        self._voiced_frames = 0
        self._unvoiced_run = 0
        self._pause_end_frames = self._end_frames
        self._speech_offset = 0
        self._speech_end = 0
        self._last_voiced = 0
        self._verdict: tuple[int, int] | None = None

    @property
    def silence_ms(self) -> int:
        """How long the turn in progress has been silent since its last voiced frame."""
        return self._unvoiced_run * FRAME_MS

    def utterance_since(self, offset: int) -> bytes:
        """The turn in progress's audio from byte ``offset`` on (pre-roll, speech and silence, untrimmed)."""
        return bytes(self._utterance[offset:])

    @property
    def last_voiced(self) -> int:
        """Frame index of the last voiced frame of the turn in progress."""
        return self._last_voiced

    def decide(self, end_silence_ms: int, last_voiced: int) -> None:
        """The verdict on a pause (semantic end of turn): end the turn after this much silence, unless
        speech came since the pause (`last_voiced` no longer the last voiced frame). Capped at max_silence_ms.

        Called on the event loop while Silero's thread may be processing this detector's frames: it only
        stores the verdict, in one assignment; the frames (`_follow`, one thread) apply it while the turn's
        last voiced frame is still the pause's (a frame index is never reused, so never to a later turn).
        """
        self._verdict = (last_voiced, min(_frames(end_silence_ms), self._max_silence_frames))

    def process(self, frame: bytes) -> TurnEvent | None:
        """Feed one 20 ms frame; return the event it completes, if any."""
        if len(frame) != self._frame_bytes:
            raise ValueError(f"expected a {self._frame_bytes}-byte frame, got {len(frame)}")
        self._frame_index += 1
        voiced = self._is_speech(frame)
        if self._state == _IDLE:
            return self._listen(frame, voiced)
        return self._follow(frame, voiced)

    def process_voiced(self, frame: bytes, voiced: bool) -> TurnEvent | None:
        """`process` for a frame its classifier has already decided (voice.audio.silero.SileroBatcher)."""
        self._frame_index += 1
        if self._state == _IDLE:
            return self._listen(frame, voiced)
        return self._follow(frame, voiced)

    @property
    def classifier(self) -> SpeechClassifier:
        return self._classifier

    def use_webrtcvad(self) -> None:
        """Go on with webrtcvad from the next frame (Silero's thread failed); the turn in progress is kept."""
        self._classifier = WebrtcClassifier(self.config.aggressiveness, self.sample_rate)
        self.detector = self._classifier.name
        self._is_speech = self._classifier.is_speech

    def _listen(self, frame: bytes, voiced: bool) -> SpeechStarted | None:
        flags = self._flags
        if len(flags) == flags.maxlen:
            self._voiced_in_window -= flags[0]
        flags.append(voiced)
        self._ring.append(frame)
        self._voiced_in_window += voiced
        if self._voiced_in_window < self._start_voiced:
            return None
        # Speech began at the first voiced frame of the window; this frame is voiced.
        utterance = self._utterance
        utterance += b"".join(self._ring)
        self._speech_offset = len(utterance) - (len(flags) - flags.index(True)) * self._frame_bytes
        self._speech_end = len(utterance)
        self._last_voiced = self._frame_index
        self._voiced_frames = self._voiced_in_window
        self._unvoiced_run = 0
        self._ring.clear()
        flags.clear()
        self._voiced_in_window = 0
        self._state = _PENDING
        return self._check_barge_in()

    def _follow(self, frame: bytes, voiced: bool) -> TurnEvent | None:
        utterance = self._utterance
        utterance += frame
        if voiced:
            self._voiced_frames += 1
            self._unvoiced_run = 0
            self._speech_end = len(utterance)
            self._last_voiced = self._frame_index
            self._pause_end_frames = self._end_frames
        else:
            self._unvoiced_run += 1
        capped = len(utterance) >= self._max_bytes
        if self._state == _PENDING:
            ended = self._unvoiced_run >= self._end_frames
            if ended or capped:
                self._end_turn()
                return None
            return self._check_barge_in()
        pause_end = self._pause_end_frames
        verdict = self._verdict
        if verdict is not None and verdict[0] == self._last_voiced:
            pause_end = verdict[1]
        ended = self._unvoiced_run >= pause_end
        if ended or capped:
            return self._stop(capped and not ended)
        if self._pause_frames and self._unvoiced_run == self._pause_frames:
            if self.config.semantic:  # hold the turn open until the verdict (decide), at most max_silence_ms
                self._pause_end_frames = self._max_silence_frames
            return SpeechPaused(self._trimmed(), self._frame_index, self._last_voiced)
        return None

    def _trimmed(self) -> bytes:
        """The utterance so far with at most TRAILING_SILENCE_MS of its trailing silence."""
        extra_silence = self._unvoiced_run - self._keep_frames
        if extra_silence > 0:
            return bytes(self._utterance[: -extra_silence * self._frame_bytes])
        return bytes(self._utterance)

    def _check_barge_in(self) -> SpeechStarted | None:
        """Start now, unless the assistant speaks and the speech is shorter than barge_in_min_ms."""
        if self.assistant_speaking and self._voiced_frames < self._barge_in_frames:
            return None
        self._state = _SPEAKING
        pre_roll = bytes(self._utterance)
        return SpeechStarted(pre_roll, self._frame_index, self.assistant_speaking)

    def _stop(self, capped: bool) -> SpeechStopped:
        speech_ms = (self._speech_end - self._speech_offset) // self._frame_bytes * FRAME_MS
        event = SpeechStopped(self._trimmed(), speech_ms, self._frame_index, capped, self._last_voiced)
        self._end_turn()
        return event

    def _end_turn(self) -> None:
        """Drop the turn in progress but keep the VAD's adapted state."""
        self._utterance.clear()
        self._state = _IDLE
        self._voiced_frames = 0
        self._unvoiced_run = 0
        self._pause_end_frames = self._end_frames
