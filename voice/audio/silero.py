"""Silero VAD (ONNX, run with onnxruntime): one model per process, one small state per call.

The model file comes from the `silero-vad` package (installed without its torch dependency: only
the data file is used, see docs/architecture.md). It scores 512-sample (32 ms) windows at 16 kHz,
each preceded by the last 64 samples of the window before, and carries a 2×1×128 recurrent state.
The pipeline cuts 20 ms (320-sample) frames, so `SileroClassifier` keeps a small preallocated
buffer, runs the model whenever a window is complete (5 windows per 8 frames), and answers each
frame with the latest window's probability, through a threshold with hysteresis.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voice.audio.frames import FRAME_BYTES, PIPELINE_RATE
from voice.audio.vad import SILERO, SpeechClassifier, TurnConfig, TurnDetector, TurnEvent, WebrtcClassifier

logger = logging.getLogger(__name__)

WINDOW = 512  # samples per model call at 16 kHz
CONTEXT = 64  # samples of the previous window the model sees before each window
FRAME_SAMPLES = FRAME_BYTES // 2
HYSTERESIS = 0.15  # speech continues until the probability drops below threshold - HYSTERESIS
PACKAGE = "silero_vad"
PACKAGED_MODEL = "data/silero_vad.onnx"
_SCALE = np.float32(1 / 32768)
# Quiet samples (as voice.audio.vad's _QUIET_HIGH_BYTES: in [-256, 255], peak below -42 dBFS) are those
# whose unsigned 16-bit value + 256 (mod 65536) is below 512.
_QUIET_OFFSET, _QUIET_LIMIT = np.uint16(256), np.uint16(512)
# How long a session waits for the speech-detection thread to answer a message (normally < 5 ms) before
# it takes it for hung and goes on with webrtcvad (voice.pipeline.input.AudioInput.listen).
DETECT_TIMEOUT_S = 2.0


class SpeechModelError(RuntimeError):
    """The speech detection model cannot be used: missing package, missing or corrupt file."""


class SpeechDetectionError(RuntimeError):
    """The speech-detection thread failed a message, or did not answer in time.

    `events`: the turn events of the frames it did process; `next`: the first frame it did not.
    """

    def __init__(self, cause: BaseException, events: list[TurnEvent], next: int) -> None:
        super().__init__(f"speech detection failed: {cause!r}")
        self.events, self.next = events, next


def packaged_model_path() -> Path:
    """The ONNX file shipped by the silero-vad package, found without importing it (it imports torch)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechModelError(
            "Silero VAD is not installed (the silero-vad package, without dependencies: see requirements/silero.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / PACKAGED_MODEL


@dataclass(frozen=True, slots=True)
class SileroModel:
    """One onnxruntime session, shared by every call in the process (run() is thread-safe)."""

    session: Any
    path: Path

    def run(self, window: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score n (n, CONTEXT + WINDOW) float32 windows with their (2, n, 128) states; returns the
        probabilities (n, 1) and the next states (2, n, 128)."""
        probability, next_state = self.session.run(None, {"input": window, "state": state, "sr": _RATE})
        return probability, next_state


_RATE = np.array(PIPELINE_RATE, dtype=np.int64)
_models: dict[Path, SileroModel | SpeechModelError] = {}
_lock = threading.Lock()


def load_model(path: Path) -> SileroModel:
    """Open the model with one intra-op thread (sessions share the process's cores, not a call's)."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise SpeechModelError(f"onnxruntime is not installed: {exc}") from None
    if not path.is_file():
        raise SpeechModelError(f"the Silero VAD model file {path} is missing")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: the packaged file has unused initializers it warns about
    try:
        session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        model = SileroModel(session, path)
        # One call proves the file is the model we expect (inputs, outputs, shapes), not just valid ONNX.
        probability, state = model.run(np.zeros((1, CONTEXT + WINDOW), np.float32), np.zeros((2, 1, 128), np.float32))
    except Exception as exc:  # noqa: BLE001 - onnxruntime's error types (InvalidProtobuf, Fail, ...) derive from Exception only
        raise SpeechModelError(f"the Silero VAD model file {path} cannot be loaded: {exc}") from None
    if probability.shape != (1, 1) or state.shape != (2, 1, 128):
        raise SpeechModelError(f"the Silero VAD model file {path} is not the expected model")
    return model


def model_path() -> Path:
    """AURA_SILERO_MODEL when set (Django's setting, or the environment outside Django), else the packaged file."""
    from django.conf import settings

    configured = settings.AURA_SILERO_MODEL if settings.configured else os.environ.get("AURA_SILERO_MODEL", "")
    return Path(configured) if configured else packaged_model_path()


def shared_model() -> SileroModel:
    """The process's model, loaded once; raises SpeechModelError (logged once) when it cannot be used."""
    try:
        path = model_path()
    except SpeechModelError as exc:
        path, error = Path(PACKAGE), exc
    else:
        error = None
    with _lock:
        cached = _models.get(path)
        if cached is None:
            try:
                cached = error or load_model(path)
            except SpeechModelError as exc:
                cached = exc
            if isinstance(cached, SpeechModelError):
                logger.error("speech detection: %s; assistants set to Silero VAD use webrtcvad instead", cached)
            _models[path] = cached
    if isinstance(cached, SpeechModelError):
        raise cached
    return cached


def preload() -> None:
    """At process start: load the model now, so a missing or corrupt file is logged before any session."""
    try:
        model = shared_model()
    except SpeechModelError:
        return  # logged by shared_model
    logger.info("speech detection: Silero VAD loaded from %s", model.path)


def silero_problem() -> str | None:
    """Why Silero VAD cannot be used in this process, or None when it can (for the admin)."""
    try:
        shared_model()
    except SpeechModelError as exc:
        return str(exc)
    return None


def speech_classifier(config: TurnConfig) -> SpeechClassifier:
    """The configured detector, or webrtcvad when Silero cannot be used here (logged once per process)."""
    if config.detector == SILERO:
        try:
            return SileroClassifier(shared_model(), config.speech_threshold, config.aggressiveness)
        except SpeechModelError:
            pass  # shared_model logged why, once; the session goes on with webrtcvad
    return WebrtcClassifier(config.aggressiveness)


class SileroClassifier:
    """Per-call streaming state: voiced or not for each 20 ms frame, without per-frame buffers.

    `_buffer` holds [64 context samples | up to 512 + 319 new samples]. A frame's samples are
    converted straight into it; when 512 new samples are there the model scores `_buffer[:576]`,
    and the remainder (and the new context) move to the front. The views used for each of the
    eight frame phases (lcm(320, 512) = 2560 samples) are made once, here.

    Two ways to use it: `is_speech(frame)` calls the model itself; `SileroBatcher` calls
    `feed(frame)`, scores the windows of many calls in one model call, and hands each its
    result with `take(...)`. A window made only of quiet samples (peak below -42 dBFS, as for
    webrtcvad) is not scored: it is unvoiced, and the recurrent state starts afresh.
    """

    __slots__ = (
        "_aggressiveness",
        "_buffer",
        "_fallback",
        "_fill",
        "_frame_pcm",
        "_frame_shifted",
        "_frame_unsigned",
        "_frame_view",
        "_loud",
        "_model",
        "_moves",
        "_negative",
        "_positive",
        "_quiet_run",
        "_state",
        "_targets",
        "_voiced",
        "_window",
        "probability",
    )
    name = "silero"
    sample_rate = PIPELINE_RATE  # the model's 16 kHz windows (a phone's 8 kHz is brought up to it)

    def __init__(self, model: SileroModel, threshold: float, aggressiveness: int = 2) -> None:
        """`aggressiveness`: webrtcvad's, should the model fail in the middle of the stream."""
        self._model = model
        self._aggressiveness = aggressiveness
        self._positive = threshold
        self._negative = max(threshold - HYSTERESIS, 0.01)
        self._buffer = np.zeros(CONTEXT + WINDOW + FRAME_SAMPLES, np.float32)
        self._window = self._buffer[: CONTEXT + WINDOW].reshape(1, CONTEXT + WINDOW)
        self._frame_pcm = np.zeros(FRAME_SAMPLES, np.int16)
        self._frame_view = memoryview(self._frame_pcm).cast("B")
        self._frame_unsigned = self._frame_pcm.view(np.uint16)
        self._frame_shifted = np.zeros(FRAME_SAMPLES, np.uint16)
        self._loud = np.zeros(FRAME_SAMPLES, np.bool_)
        # Where a frame's samples go, per fill level (CONTEXT + 0..WINDOW-1, in steps of 64).
        self._targets = {
            fill: self._buffer[fill : fill + FRAME_SAMPLES] for fill in range(CONTEXT, CONTEXT + WINDOW, CONTEXT)
        }
        # What moves to the front after a window, per fill level (CONTEXT + WINDOW .. + FRAME_SAMPLES - 64).
        self._moves = {
            fill: (self._buffer[: fill - WINDOW], self._buffer[WINDOW:fill])
            for fill in range(CONTEXT + WINDOW, CONTEXT + WINDOW + FRAME_SAMPLES, CONTEXT)
        }
        self._state = np.zeros((2, 1, 128), np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the audio heard so far (a new stream)."""
        self._buffer.fill(0.0)
        self._state.fill(0.0)
        self._fill = CONTEXT
        self._quiet_run = CONTEXT  # quiet samples at the end of the buffer: the zero context is quiet
        self._voiced = False
        self._fallback: SpeechClassifier | None = None
        self.probability = 0.0

    @property
    def window(self) -> np.ndarray:
        """The (1, 576) window to score, when `feed` returned None."""
        return self._window

    @property
    def state(self) -> np.ndarray:
        """The (2, 1, 128) recurrent state to score the window with."""
        return self._state

    def feed(self, frame: bytes) -> bool | None:
        """Take one 640-byte frame: its decision, or None when a window waits for the model (`take`)."""
        if self._fallback is not None:
            return self._fallback.is_speech(frame)
        fill = self._fill
        self._frame_view[:] = frame
        # No per-frame buffers: a direct cast into the window, scaled in place (int16 * float32 would go
        # through numpy's casting buffer), and the quiet check on preallocated arrays.
        target = self._targets[fill]
        np.copyto(target, self._frame_pcm, casting="unsafe")
        np.multiply(target, _SCALE, out=target)
        np.add(self._frame_unsigned, _QUIET_OFFSET, out=self._frame_shifted)
        np.greater_equal(self._frame_shifted, _QUIET_LIMIT, out=self._loud)
        fill += FRAME_SAMPLES
        self._fill = fill
        if np.count_nonzero(self._loud):
            self._quiet_run = 0
        else:
            self._quiet_run += FRAME_SAMPLES
        if fill < CONTEXT + WINDOW:
            return self._voiced
        if self._quiet_run >= fill:  # nothing but quiet samples in the window and its context
            self._state.fill(0.0)
            return self._next_window(0.0)
        return None

    def take(self, probability: float, state: np.ndarray) -> bool:
        """The model's score of `window` and the state after it: the decision for the frame fed last."""
        np.copyto(self._state, state)
        return self._next_window(probability)

    def _next_window(self, probability: float) -> bool:
        self.probability = probability
        # Keep the last CONTEXT samples of this window and whatever followed it.
        np.copyto(*self._moves[self._fill])
        self._fill -= WINDOW
        if probability >= self._positive:
            self._voiced = True
        elif probability < self._negative:
            self._voiced = False
        return self._voiced

    def fail(self, frame: bytes) -> bool:
        """The model failed: log it, go on with webrtcvad from this frame on."""
        logger.exception("speech detection: Silero VAD failed; this session goes on with webrtcvad")
        self._fallback = WebrtcClassifier(self._aggressiveness)
        return self._fallback.is_speech(frame)

    def is_speech(self, frame: bytes) -> bool:
        """Voiced or not, for one 640-byte frame; the model runs when a 32 ms window completes."""
        decided = self.feed(frame)
        if decided is not None:
            return decided
        try:
            probability, state = self._model.run(self._window, self._state)
        except Exception:  # noqa: BLE001 - onnxruntime's errors derive from Exception only; fail() logs it
            return self.fail(frame)
        return self.take(float(probability[0, 0]), state)


@dataclass(slots=True)
class _Job:
    detector: TurnDetector
    frames: list[bytes]
    future: asyncio.Future[list[TurnEvent]] | None = None  # answered on its loop; None: read `events`
    next: int = 0
    events: list[TurnEvent] = field(default_factory=list)
    error: BaseException | None = None
    abandoned: bool = False  # the session stopped waiting (timeout): the thread leaves its detector alone


class SileroBatcher:
    """One thread that scores the windows of every session waiting, in one model call a round.

    Sessions hand over a message's frames (`detect`); the thread takes every message queued,
    feeds their frames round by round (each message up to its next window), scores all the
    windows of a round in one batched call (the GIL released once for all of them), and answers
    each session's future on its event loop. One message of a session at a time (the session
    awaits it), so each detector sees its frames in order.
    """

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.stalled = False  # a message timed out: the thread may be hung; shared_batcher starts another
        self._thread = threading.Thread(target=self._serve, name="speech-detection", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        return not self.stalled and self._thread.is_alive()

    async def detect(self, detector: TurnDetector, frames: list[bytes]) -> list[TurnEvent]:
        """The turn events of these frames (the detector's classifier must be this model's).

        Raises SpeechDetectionError when the thread failed this message or gave no answer within
        DETECT_TIMEOUT_S; the thread then no longer touches the detector.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[TurnEvent]] = loop.create_future()
        job = _Job(detector, frames, future)
        self._queue.put(job)
        timer = loop.call_later(DETECT_TIMEOUT_S, _expire, future)  # lighter than wait_for, once per message
        try:
            return await future
        except TimeoutError as exc:
            job.abandoned = True
            self.stalled = True
            raise SpeechDetectionError(exc, list(job.events), job.next) from exc
        except Exception as exc:  # the thread's error, whatever it is
            job.abandoned = True
            raise SpeechDetectionError(exc, list(job.events), job.next) from exc
        finally:
            timer.cancel()

    def _serve(self) -> None:
        while True:
            jobs = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    jobs.append(self._queue.get_nowait())
            try:
                self.run(jobs)
            except Exception as exc:  # a bug here must not leave every session waiting forever
                logger.exception("speech detection: a batch of %d messages failed", len(jobs))
                for job in jobs:
                    job.error = exc
                _answer(jobs)

    def run(self, jobs: list[_Job]) -> None:
        """Every frame of every job, with batched model calls; then each future is answered, one
        wake-up per event loop for the whole batch."""
        active = jobs
        while active:
            waiting: list[tuple[_Job, bytes]] = []
            for job in active:
                if job.abandoned:
                    continue
                detector, frames, events = job.detector, job.frames, job.events
                classifier = detector.classifier
                try:
                    while job.next < len(frames):
                        frame = frames[job.next]
                        job.next += 1
                        decided = classifier.feed(frame)  # type: ignore[attr-defined]
                        if decided is None:
                            waiting.append((job, frame))
                            break
                        if event := detector.process_voiced(frame, decided):
                            events.append(event)
                except Exception as exc:  # noqa: BLE001 - the session gets the error, the others go on
                    job.error = exc
            if waiting:
                self._score(waiting)
            active = [job for job in active if job.next < len(job.frames) and job.error is None and not job.abandoned]
        _answer(jobs)

    def _score(self, waiting: list[tuple[_Job, bytes]]) -> None:
        classifiers = [job.detector.classifier for job, _ in waiting]
        windows = np.concatenate([c.window for c in classifiers])  # type: ignore[attr-defined]
        states = np.concatenate([c.state for c in classifiers], axis=1)  # type: ignore[attr-defined]
        try:
            probabilities, next_states = self._model.run(windows, states)
        except Exception:  # noqa: BLE001 - every session in the round goes on with webrtcvad
            probabilities = next_states = None
        # Each session on its own from here: one's error (a garbled answer, a bug in its state) is its own.
        for i, (classifier, (job, frame)) in enumerate(zip(classifiers, waiting, strict=True)):
            if job.abandoned:
                continue
            try:
                if probabilities is None:
                    voiced = classifier.fail(frame)  # type: ignore[attr-defined]
                else:
                    try:
                        voiced = classifier.take(float(probabilities[i, 0]), next_states[:, i : i + 1])  # type: ignore[attr-defined,index]
                    except Exception:  # noqa: BLE001 - an answer that does not fit: webrtcvad from here
                        voiced = classifier.fail(frame)  # type: ignore[attr-defined]
                if event := job.detector.process_voiced(frame, voiced):
                    job.events.append(event)
            except Exception as exc:  # noqa: BLE001 - this session gets the error, the others go on
                job.error = exc


def _answer(jobs: list[_Job]) -> None:
    """Each job's future, on its event loop: one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        if job.future is not None:
            by_loop.setdefault(job.future.get_loop(), []).append(job)
    for loop, answered in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a loop that closed meanwhile has no one waiting
            loop.call_soon_threadsafe(_settle, answered)


def _expire(future: asyncio.Future[list[TurnEvent]]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("the speech-detection thread did not answer in time"))


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        future = job.future
        if future is None or future.done():  # the session went away meanwhile
            continue
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.events)


_batcher: SileroBatcher | None = None


def shared_batcher() -> SileroBatcher:
    """The process's batcher, started on first use (only where a session listens with Silero)."""
    global _batcher
    batcher = _batcher
    if batcher is not None and batcher.healthy:  # every message asks: two attribute reads on this path
        return batcher
    model = shared_model()
    with _lock:
        if _batcher is None or not _batcher.healthy:
            if _batcher is not None:
                logger.error(
                    "speech detection: the speech-detection thread is %s; starting another",
                    "hung" if _batcher.stalled else "dead",
                )
            _batcher = SileroBatcher(model)
        return _batcher
