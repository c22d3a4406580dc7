"""The listening evaluation set: the speech fixtures over noise, music and babble, with the truth known.

    .venv/bin/python -m bench.listening_set            # describe the set (what bench.listening runs)

Nothing is downloaded and nothing large is committed: every clip is made here, deterministically
from a seed, out of the committed espeak-ng fixtures (tests/fixtures/speech/) and synthetic
backgrounds:

* pink and brown noise (white noise shaped in the frequency domain, 1/f and 1/f² power);
* music: a chord progression of harmonic tones (six partials, 1/k amplitudes) with a plucked
  envelope on every beat, a bass line, a sung-like melody with vibrato, and a kick and hi-hat;
* babble: four streams of other fixtures' speech, half of them reversed, at random offsets and gains.

A background is set to a signal-to-noise ratio against the speech's active level (RMS over the
20 ms frames within 40 dB of the loudest). "Listening" clips place the fixtures' sentences (their
silence padding cut off) between stretches of background; the true speech is each sentence's span
from its first to its last loud sample (split where a sentence pauses for 1 s or more, as in
two_sentences.wav), and the true active frames are those of the clean sentence within 40 dB of its
loudest. "Playback" clips are heard while the assistant speaks: the background and an echo of the
assistant's own voice (other fixtures' sentences back to back, through a synthetic room: an impulse
response of decaying noise, RT60 0.3 s, at ``ECHO_DB`` against the visitor's speech level: what a
browser's echo cancellation leaves of a laptop speaker). No visitor speech: any SpeechStarted there is
a false barge-in.
"""

from __future__ import annotations

import argparse
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 16000
FRAME = 320  # samples per 20 ms frame
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "speech"
LEAD_S, TAIL_S = 0.5, 1.0  # silence padding of every fixture
LOUD = 100  # |sample| at or above this (-50 dBFS) is speech, as in tests/voice/audio/test_vad.py
SENTENCES = (
    "hours",
    "booking",
    "long_question",
    "interrupt",
    "two_sentences",
    "human",
    "goodbye",
    "private_room",
    "forget",
)
BACKGROUNDS = ("pink", "brown", "music", "babble")
SNRS_DB = (20, 10, 5, 0)
TUNING_SEED, EVALUATION_SEED = 1, 2
ECHO_DB: int | None = -20  # the assistant's voice at the microphone, against the visitor's speech level
ECHO_RT60_S = 0.3


@dataclass(frozen=True)
class Clip:
    name: str
    background: str  # "silence" or one of BACKGROUNDS
    snr_db: int | None
    pcm: bytes = field(repr=False)
    assistant_speaking: bool = False  # a playback clip: background and the assistant's echo, no visitor
    speech: tuple[tuple[int, int], ...] = ()  # true speech spans, in samples
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)  # per 20 ms frame

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / RATE


def read_sentence(name: str) -> np.ndarray:
    """A fixture's speech without its silence padding, as float samples in [-1, 1)."""
    with wave.open(str(FIXTURES / f"{name}.wav"), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE), name
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm[int(LEAD_S * RATE) : len(pcm) - int(TAIL_S * RATE)].astype(np.float64) / 32768


def frame_rms(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    return np.sqrt(np.mean(frames**2, axis=1))


def active_level(x: np.ndarray) -> float:
    """RMS over the frames within 40 dB of the loudest: the speech's level, pauses left out."""
    rms = frame_rms(x)
    return float(np.sqrt(np.mean(rms[rms >= rms.max() / 100] ** 2)))


def spans(x: np.ndarray, min_gap_s: float = 1.0) -> list[tuple[int, int]]:
    loud = np.flatnonzero(np.abs(x) * 32768 >= LOUD)
    breaks = np.flatnonzero(np.diff(loud) > min_gap_s * RATE)
    return list(zip([loud[0], *loud[breaks + 1]], [*loud[breaks] + 1, loud[-1] + 1], strict=True))


# --- backgrounds ---------------------------------------------------------------------------------


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (1: pink, 2: brown), above 20 Hz."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spectrum *= 1 / np.maximum(f, 20.0) ** (exponent / 2)
    return np.fft.irfft(spectrum, n)


def _tone(freq: np.ndarray | float, n: int, partials: int = 6) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(freq, (n,))) / RATE
    return sum(np.sin(k * phase) / k for k in range(1, partials + 1))


def music(rng: np.random.Generator, n: int) -> np.ndarray:
    """Chords, bass, a melody with vibrato, kick and hi-hat, at a random key and tempo."""
    out = np.zeros(n)
    beat = int(RATE * 60 / rng.uniform(90, 140))
    key = 220 * 2 ** (rng.integers(0, 12) / 12)
    progression = [(0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)]  # I V vi IV
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    t = np.arange(beat) / RATE
    pluck = np.minimum(t / 0.01, 1) * np.exp(-t * 3.0)
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    hat_n = int(0.03 * RATE)
    for i, start in enumerate(range(0, n - beat, beat)):
        chord = progression[(i // 4) % len(progression)]
        segment = sum(_tone(key * 2 ** (s / 12), beat) for s in chord) * pluck * 0.3
        segment += _tone(key / 2 * 2 ** (chord[0] / 12), beat, partials=3) * pluck * 0.5
        note = key * 2 * 2 ** (scale[rng.integers(0, len(scale))] / 12)
        vibrato = note * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
        segment += _tone(vibrato, beat) * np.minimum(t / 0.05, 1) * np.exp(-t * 1.0) * 0.4
        if i % 2 == 0:
            segment += kick * 0.8
        segment[: hat_n * 2 : 2] += rng.standard_normal(hat_n) * np.exp(-np.arange(hat_n) / 60) * 0.15
        out[start : start + beat] += segment
    return out


def babble(rng: np.random.Generator, n: int, sentences: dict[str, np.ndarray]) -> np.ndarray:
    """Four talkers made of the fixtures, half reversed, at random offsets and gains."""
    out = np.zeros(n)
    names = list(sentences)
    for talker in range(4):
        stream: list[np.ndarray] = []
        length = int(rng.integers(0, RATE))
        stream.append(np.zeros(length))
        while length < n:
            speech = sentences[names[rng.integers(0, len(names))]]
            speech = speech[::-1] if talker % 2 else speech
            gap = np.zeros(int(rng.uniform(0.05, 0.4) * RATE))
            stream += [speech * rng.uniform(0.5, 1.0), gap]
            length += len(speech) + len(gap)
        out += np.concatenate(stream)[:n]
    return out


def background(kind: str, rng: np.random.Generator, n: int, sentences: dict[str, np.ndarray]) -> np.ndarray:
    if kind == "pink":
        return coloured_noise(rng, n, 1.0)
    if kind == "brown":
        return coloured_noise(rng, n, 2.0)
    if kind == "music":
        return music(rng, n)
    if kind == "babble":
        return babble(rng, n, sentences)
    raise ValueError(f"unknown background {kind!r}")


def at_snr(noise: np.ndarray, speech_level: float, snr_db: float) -> np.ndarray:
    """The noise scaled so that speech_level / its RMS is snr_db (music and babble: their active RMS)."""
    return noise * (speech_level / 10 ** (snr_db / 20) / active_level(noise))


def to_pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes()


# --- clips -----------------------------------------------------------------------------------------


def listening_clip(
    name: str, kind: str, snr_db: int | None, rng: np.random.Generator, sentences: dict[str, np.ndarray]
) -> Clip:
    """Every sentence once, in a shuffled order, between 1.5-4 s of background (3 s before the first)."""
    parts: list[np.ndarray] = [np.zeros(3 * RATE)]
    truth: list[tuple[int, int]] = []
    active: list[np.ndarray] = [np.zeros(3 * RATE // FRAME, bool)]
    position = 3 * RATE
    for index in rng.permutation(len(SENTENCES)):
        speech = sentences[SENTENCES[index]] * rng.uniform(0.5, 1.0)
        speech = np.concatenate([speech, np.zeros(-len(speech) % FRAME)])
        truth += [(position + start, position + end) for start, end in spans(speech)]
        rms = frame_rms(speech)
        active.append(rms >= rms.max() / 100)
        gap = np.zeros(int(rng.uniform(1.5, 4.0) * RATE) // FRAME * FRAME)
        active.append(np.zeros(len(gap) // FRAME, bool))
        parts += [speech, gap]
        position += len(speech) + len(gap)
    clean = np.concatenate(parts)
    level = active_level(np.concatenate([sentences[s] for s in SENTENCES]))
    mixed = clean if kind == "silence" else clean + at_snr(background(kind, rng, len(clean), sentences), level, snr_db)
    return Clip(name, kind, snr_db, to_pcm(mixed), speech=tuple(truth), active=np.concatenate(active))


def assistant_echo(rng: np.random.Generator, n: int, sentences: dict[str, np.ndarray]) -> np.ndarray:
    """The assistant talking (sentences with 0.2-0.8 s between them) as the room returns it to the microphone:
    convolved (by FFT) with a 5 ms delayed impulse response of noise decaying 60 dB in ECHO_RT60_S."""
    names = list(sentences)
    parts: list[np.ndarray] = []
    length = 0
    while length < n:
        speech = sentences[names[rng.integers(0, len(names))]]
        gap = np.zeros(int(rng.uniform(0.2, 0.8) * RATE))
        parts += [speech, gap]
        length += len(speech) + len(gap)
    voice = np.concatenate(parts)[:n]
    taps = int(ECHO_RT60_S * RATE)
    response = rng.standard_normal(taps) * 10 ** (-3 * np.arange(taps) / taps)
    response[: int(0.005 * RATE)] = 0.0
    size = 1 << int(np.ceil(np.log2(n + taps)))
    return np.fft.irfft(np.fft.rfft(voice, size) * np.fft.rfft(response, size), size)[:n]


def playback_clip(
    name: str,
    kind: str,
    snr_db: int,
    seconds: float,
    rng: np.random.Generator,
    sentences: dict[str, np.ndarray],
    *,
    echo_db: int | None = ECHO_DB,
) -> Clip:
    """`seconds` of background at `snr_db` and, unless `echo_db` is None, the assistant's echo at `echo_db`."""
    level = active_level(np.concatenate([sentences[s] for s in SENTENCES]))
    n = int(seconds * RATE)
    mixed = at_snr(background(kind, rng, n, sentences), level, snr_db)
    if echo_db is not None:
        echo = assistant_echo(rng, n, sentences)
        mixed = mixed + echo * (level * 10 ** (echo_db / 20) / active_level(echo))
    return Clip(name, kind, snr_db, to_pcm(mixed), assistant_speaking=True)


def evaluation_set(
    seed: int = EVALUATION_SEED, clips_per_condition: int = 2, playback_s: float = 600
) -> Iterator[Clip]:
    """Clean speech, then each background at each SNR: listening clips, then playback clips."""
    sentences = {name: read_sentence(name) for name in SENTENCES}
    for clip in range(clips_per_condition):
        rng = np.random.default_rng([seed, 0, clip])
        yield listening_clip(f"silence#{clip}", "silence", None, rng, sentences)
    for b, kind in enumerate(BACKGROUNDS):
        for snr in SNRS_DB:
            for clip in range(clips_per_condition):
                rng = np.random.default_rng([seed, 1 + b, snr, clip])
                yield listening_clip(f"{kind}@{snr}dB#{clip}", kind, snr, rng, sentences)
            rng = np.random.default_rng([seed, 100 + b, snr])
            yield playback_clip(f"{kind}@{snr}dB/playback", kind, snr, playback_s, rng, sentences)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=EVALUATION_SEED)
    args = parser.parse_args()
    total = speech = playback = 0.0
    for clip in evaluation_set(args.seed):
        total += clip.seconds
        speech += sum(end - start for start, end in clip.speech) / RATE
        playback += clip.seconds if clip.assistant_speaking else 0
        print(f"{clip.name:24} {clip.seconds:6.1f} s  {len(clip.speech):2} speech spans")
    print(f"total {total / 60:.1f} min: speech {speech / 60:.1f} min, playback {playback / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
