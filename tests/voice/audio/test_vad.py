"""Turn detection on real speech (espeak-ng fixtures) and on synthetic non-speech."""

import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from voice.audio.frames import (
    FRAME_BYTES,
    FRAME_MS,
    NARROWBAND_RATE,
    PIPELINE_RATE,
    Reframer,
    frame_bytes,
    ms_to_bytes,
)
from voice.audio.silero import speech_classifier
from voice.audio.vad import (
    TRAILING_SILENCE_MS,
    SpeechPaused,
    SpeechStarted,
    SpeechStopped,
    TurnConfig,
    TurnDetector,
    TurnEvent,
    WebrtcClassifier,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "speech"
FIXTURE_LEAD_MS, FIXTURE_TAIL_MS = 500, 1000  # silence padding in every fixture
LOUD = 100  # |sample| at or above this (-50 dBFS) is speech, for measuring the true speech span
DEFAULT = TurnConfig()
SENTENCES = ["hours", "booking", "long_question", "interrupt"]


# --- helpers -------------------------------------------------------------------------------


def read_speech(name: str) -> bytes:
    """PCM of a committed fixture (16 kHz, 16-bit mono)."""
    with wave.open(str(FIXTURES / f"{name}.wav"), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, PIPELINE_RATE)
        return wav.readframes(wav.getnframes())


def speech_only(name: str) -> bytes:
    """A fixture without its silence padding."""
    pcm = read_speech(name)
    return pcm[ms_to_bytes(FIXTURE_LEAD_MS) : len(pcm) - ms_to_bytes(FIXTURE_TAIL_MS)]


def silence(ms: int) -> bytes:
    return bytes(ms_to_bytes(ms))


def padded(name: str, ms: int = 1000) -> bytes:
    """A fixture's speech with `ms` of silence before and after."""
    return silence(ms) + speech_only(name) + silence(ms)


def speech_spans(pcm: bytes, min_gap_ms: int = 1000) -> list[tuple[float, float]]:
    """(start_ms, end_ms) of each stretch of loud samples, split at quiet gaps of min_gap_ms."""
    loud = np.flatnonzero(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)) >= LOUD)
    breaks = np.flatnonzero(np.diff(loud) > min_gap_ms * PIPELINE_RATE // 1000)
    starts = [loud[0], *loud[breaks + 1]]
    ends = [*loud[breaks], loud[-1]]
    return [
        (start * 1000 / PIPELINE_RATE, (end + 1) * 1000 / PIPELINE_RATE)
        for start, end in zip(starts, ends, strict=True)
    ]


def detect(
    pcm: bytes, config: TurnConfig = DEFAULT, *, assistant_speaking: bool = False, chunk_bytes: int = 1000
) -> list[TurnEvent]:
    """Feed audio through Reframer and TurnDetector in network-sized chunks; return the events."""
    reframer = Reframer(FRAME_BYTES)
    detector = TurnDetector(config, speech_classifier(config))
    detector.assistant_speaking = assistant_speaking
    events = []
    for i in range(0, len(pcm), chunk_bytes):
        for frame in reframer.push(pcm[i : i + chunk_bytes]):
            if event := detector.process(frame):
                events.append(event)
    return events


def kinds(events: list[TurnEvent]) -> list[type]:
    return [type(event) for event in events]


def ms(byte_count: int) -> float:
    return byte_count * 1000 / (PIPELINE_RATE * 2)


def start_offset(event: SpeechStarted) -> int:
    """Byte offset in the stream where the event's pre-roll (and the turn's utterance) begins."""
    return event.frame_index * FRAME_BYTES - len(event.pre_roll)


def tone(amplitude: float, seconds: float = 5.0, hz: float = 1000.0) -> bytes:
    t = np.arange(int(PIPELINE_RATE * seconds)) / PIPELINE_RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def white_noise(sigma: float, seconds: float = 5.0) -> bytes:
    noise = np.random.default_rng(1234).normal(0.0, sigma, int(PIPELINE_RATE * seconds))
    return noise.clip(-32768, 32767).astype("<i2").tobytes()


# --- one sentence ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SENTENCES)
def test_one_sentence_is_one_turn_that_ends_after_the_end_silence(name: str) -> None:
    # given a sentence with 1 s of silence before and after
    pcm = padded(name)
    [(speech_start, speech_end)] = speech_spans(pcm)

    # when it is fed through the detector
    events = detect(pcm)

    # then there is exactly one turn
    assert kinds(events) == [SpeechStarted, SpeechStopped]
    started, stopped = events
    assert isinstance(started, SpeechStarted)
    assert isinstance(stopped, SpeechStopped)
    assert not started.during_assistant_speech
    assert not stopped.capped
    # and it starts soon after the speech, and stops end_silence_ms (+ at most 60 ms) after it
    assert 0 < started.frame_index * FRAME_MS - speech_start <= DEFAULT.start_ms + 40
    assert DEFAULT.end_silence_ms <= stopped.frame_index * FRAME_MS - speech_end <= DEFAULT.end_silence_ms + 60
    # and the utterance is the stream's audio, from pre-roll before the speech to just after it
    offset = start_offset(started)
    assert stopped.utterance.startswith(started.pre_roll)
    assert stopped.utterance == pcm[offset : offset + len(stopped.utterance)]
    assert speech_start - ms(offset) >= DEFAULT.pre_roll_ms
    assert 0 <= ms(offset + len(stopped.utterance)) - speech_end <= TRAILING_SILENCE_MS + FRAME_MS
    assert ms(len(stopped.utterance)) >= speech_end - speech_start
    assert stopped.speech_ms == pytest.approx(speech_end - speech_start, abs=2 * FRAME_MS)


@pytest.mark.parametrize("name", SENTENCES)
def test_over_background_noise_the_stop_also_waits_out_webrtcvads_hangover(name: str) -> None:
    """With noise instead of digital silence after the speech, webrtcvad keeps flagging
    speech for its hangover (3-5 frames at aggressiveness 2), so the stop comes up to
    ~140 ms after end_silence_ms; over quiet audio the detector cuts the hangover."""
    # given a sentence over white noise at -50 dBFS RMS
    clean = padded(name)
    [(speech_start, speech_end)] = speech_spans(clean)
    noise = np.random.default_rng(5).normal(0.0, 100.0, len(clean) // 2)
    pcm = (np.frombuffer(clean, dtype="<i2") + noise).clip(-32768, 32767).astype("<i2").tobytes()

    # when fed through the detector
    events = detect(pcm)

    # then it is still one turn, which ends within end_silence_ms + 140 ms of the speech
    assert kinds(events) == [SpeechStarted, SpeechStopped]
    started, stopped = events
    assert 0 < started.frame_index * FRAME_MS - speech_start <= DEFAULT.start_ms + 40
    assert DEFAULT.end_silence_ms <= stopped.frame_index * FRAME_MS - speech_end <= DEFAULT.end_silence_ms + 140


def test_in_speech_is_true_between_start_and_stop() -> None:
    reframer, detector = Reframer(FRAME_BYTES), TurnDetector()
    states = []
    for frame in reframer.push(padded("hours")):
        event = detector.process(frame)
        states.append((type(event) if event else None, detector.in_speech))

    started_at = states.index((SpeechStarted, True))
    stopped_at = states.index((SpeechStopped, False))
    assert all(in_speech for _, in_speech in states[started_at:stopped_at])
    assert not any(in_speech for _, in_speech in states[:started_at] + states[stopped_at:])


# --- pauses -------------------------------------------------------------------------------------


def test_sentences_1_5_s_apart_are_two_turns() -> None:
    # given two sentences separated by 1.5 s of silence
    pcm = read_speech("two_sentences")
    spans = speech_spans(pcm)
    assert len(spans) == 2

    # when fed through the detector
    events = detect(pcm)

    # then each sentence is its own turn, and each utterance holds its whole sentence
    assert kinds(events) == [SpeechStarted, SpeechStopped] * 2
    for (started, stopped), (speech_start, speech_end) in zip([events[:2], events[2:]], spans, strict=True):
        assert isinstance(started, SpeechStarted)
        assert isinstance(stopped, SpeechStopped)
        offset = start_offset(started)
        assert ms(offset) < speech_start
        assert ms(offset + len(stopped.utterance)) > speech_end


def test_sentences_300_ms_apart_are_one_turn() -> None:
    # given two sentences separated by only 300 ms
    pcm = silence(1000) + speech_only("hours") + silence(300) + speech_only("booking") + silence(1000)
    first_start, _ = speech_spans(pcm, min_gap_ms=250)[0]
    _, last_end = speech_spans(pcm, min_gap_ms=250)[-1]

    # when fed through the detector with end_silence_ms=600, then with 200
    events = detect(pcm, TurnConfig(end_silence_ms=600))
    impatient = detect(pcm, TurnConfig(end_silence_ms=200))

    # then the pause does not end the turn at 600 ms, but does at 200 ms
    assert kinds(events) == [SpeechStarted, SpeechStopped]
    started, stopped = events
    assert isinstance(started, SpeechStarted)
    assert isinstance(stopped, SpeechStopped)
    assert ms(start_offset(started)) < first_start
    assert ms(start_offset(started) + len(stopped.utterance)) > last_end
    assert kinds(impatient) == [SpeechStarted, SpeechStopped] * 2


# --- non-speech ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sound", "aggressiveness"),
    [
        pytest.param(silence(5000), 2, id="digital-silence"),
        pytest.param(white_noise(sigma=100), 2, id="white-noise-rms-100"),
        pytest.param(white_noise(sigma=300), 2, id="white-noise-rms-300"),
        pytest.param(tone(amplitude=1000), 2, id="tone-1kHz-minus-30dBFS"),
        pytest.param(tone(amplitude=1000), 3, id="tone-1kHz-minus-30dBFS-aggressive"),
    ],
)
def test_non_speech_gives_no_turn(sound: bytes, aggressiveness: int) -> None:
    assert detect(sound, TurnConfig(aggressiveness=aggressiveness)) == []


@pytest.mark.parametrize("aggressiveness", [2, 3])
def test_steady_tone_at_speech_level_is_taken_for_speech(aggressiveness: int) -> None:
    """Known limit of webrtcvad: a steady 1 kHz tone from about -22 dBFS up counts as speech,
    even at aggressiveness 3 (measured: 2500 and 3277 amplitude are voiced in every frame)."""
    events = detect(tone(amplitude=3277), TurnConfig(aggressiveness=aggressiveness))

    assert kinds(events)[:1] == [SpeechStarted]


# --- max utterance ------------------------------------------------------------------------------


def test_speech_longer_than_max_utterance_is_cut_without_losing_audio() -> None:
    # given 40 s of continuous speech (sentences 200 ms apart), then silence
    sentences = [speech_only(name) for name in SENTENCES]
    stream = b""
    while ms(len(stream)) < 40_000:
        stream += sentences[len(stream) % len(sentences)] + silence(200)
    pcm = silence(1000) + stream + silence(1000)

    # when fed through the detector
    events = detect(pcm)

    # then the first turn is capped at exactly max_utterance_ms, and the next turn picks up where it ended
    assert kinds(events) == [SpeechStarted, SpeechStopped] * 2
    first_start, capped, second_start, last = events
    assert isinstance(first_start, SpeechStarted)
    assert isinstance(capped, SpeechStopped)
    assert isinstance(second_start, SpeechStarted)
    assert isinstance(last, SpeechStopped)
    assert capped.capped
    assert ms(len(capped.utterance)) == DEFAULT.max_utterance_ms
    assert capped.frame_index * FRAME_BYTES == start_offset(first_start) + len(capped.utterance)
    assert start_offset(second_start) == capped.frame_index * FRAME_BYTES
    assert not last.capped
    assert ms(len(capped.utterance) + len(last.utterance)) >= ms(len(stream)) - 200


# --- barge-in -----------------------------------------------------------------------------------


def test_short_backchannel_while_assistant_speaks_gives_no_event() -> None:
    # given a "mhm" whose voiced part is shorter than barge_in_min_ms
    pcm = padded("mhm")

    # when it is heard while the assistant speaks, and while it does not
    during_assistant = detect(pcm, assistant_speaking=True)
    alone = detect(pcm)

    # then it is ignored during assistant speech, though it is a turn on its own
    assert during_assistant == []
    assert kinds(alone) == [SpeechStarted, SpeechStopped]


def test_sentence_while_assistant_speaks_barges_in_with_all_its_audio() -> None:
    # given a full sentence spoken over the assistant
    pcm = padded("interrupt")
    [(speech_start, speech_end)] = speech_spans(pcm)
    first_voiced_frame = int(speech_start // FRAME_MS)

    # when fed through the detector with assistant_speaking set
    events = detect(pcm, assistant_speaking=True)

    # then speech starts only after barge_in_min_ms of it, flagged as during assistant speech
    assert kinds(events) == [SpeechStarted, SpeechStopped]
    started, stopped = events
    assert isinstance(started, SpeechStarted)
    assert isinstance(stopped, SpeechStopped)
    assert started.during_assistant_speech
    assert started.frame_index >= first_voiced_frame + DEFAULT.barge_in_min_ms / FRAME_MS
    assert started.frame_index * FRAME_MS - speech_start >= DEFAULT.barge_in_min_ms
    # and its pre-roll holds everything since the speech began, plus the pre-roll before it
    offset = start_offset(started)
    assert started.pre_roll == pcm[offset : started.frame_index * FRAME_BYTES]
    assert speech_start - ms(offset) >= DEFAULT.pre_roll_ms
    # and the turn then ends as usual, with the whole sentence
    assert stopped.utterance.startswith(started.pre_roll)
    assert ms(offset + len(stopped.utterance)) > speech_end


def test_pending_barge_in_starts_at_once_when_the_assistant_stops() -> None:
    # given speech that began over the assistant, not yet long enough to barge in
    pcm = padded("interrupt")
    [(speech_start, _)] = speech_spans(pcm)
    detector = TurnDetector()
    detector.assistant_speaking = True
    frames = Reframer(FRAME_BYTES).push(pcm)
    quiet_until = int(speech_start // FRAME_MS) + 8
    assert [detector.process(frame) for frame in frames[:quiet_until]] == [None] * quiet_until

    # when the assistant stops speaking
    detector.assistant_speaking = False
    event = detector.process(frames[quiet_until])

    # then the visitor's speech starts with this frame, with all its audio so far
    assert isinstance(event, SpeechStarted)
    assert not event.during_assistant_speech
    assert event.frame_index == quiet_until + 1
    assert speech_start - ms(start_offset(event)) >= DEFAULT.pre_roll_ms
    assert event.pre_roll == pcm[start_offset(event) : event.frame_index * FRAME_BYTES]


# --- API ----------------------------------------------------------------------------------------


def test_reset_forgets_the_turn_in_progress() -> None:
    # given a detector in the middle of a sentence
    frames = Reframer(FRAME_BYTES).push(padded("hours"))
    detector = TurnDetector()
    for frame in frames[: len(frames) // 2]:
        detector.process(frame)
    assert detector.in_speech

    # when it is reset, and silence follows
    detector.reset()
    events = [detector.process(frame) for frame in Reframer(FRAME_BYTES).push(silence(2000))]

    # then it is idle, and the forgotten turn never ends
    assert not detector.in_speech
    assert events == [None] * len(events)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aggressiveness": 4}, "aggressiveness"),
        ({"aggressiveness": -1}, "aggressiveness"),
        ({"start_ms": 10}, "start_ms"),
        ({"end_silence_ms": 0}, "end_silence_ms"),
        ({"pre_roll_ms": -20}, "pre_roll_ms"),
        ({"barge_in_min_ms": -1}, "barge_in_min_ms"),
        ({"max_utterance_ms": 400}, "max_utterance_ms"),
    ],
)
def test_invalid_config_is_rejected(overrides: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TurnConfig(**overrides)


@pytest.mark.parametrize("size", [0, 320, 639, 641, 960])
def test_process_takes_exactly_one_frame(size: int) -> None:
    with pytest.raises(ValueError, match="640-byte frame"):
        TurnDetector().process(bytes(size))


# --- semantic end of turn: a pause asks for a verdict, the verdict sets the silence that ends the turn ---

SEMANTIC = TurnConfig(semantic=True, min_silence_ms=300, end_silence_ms=600, max_silence_ms=2000)


def _feed(detector: TurnDetector, pcm: bytes) -> list[TurnEvent]:
    events = []
    for offset in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        if (event := detector.process(pcm[offset : offset + FRAME_BYTES])) is not None:
            events.append(event)
    return events


def test_a_pause_is_reported_once_and_the_turn_is_held_until_the_verdict() -> None:

    detector = TurnDetector(SEMANTIC)
    events = _feed(detector, silence(500) + speech_only("hours") + silence(1500))
    paused = [e for e in events if isinstance(e, SpeechPaused)]
    assert len(paused) == 1
    assert not any(isinstance(e, SpeechStopped) for e in events)  # no verdict: held (up to max_silence_ms)
    assert detector.in_speech
    assert paused[0].last_voiced == detector.last_voiced
    # the utterance at the pause is what the turn would carry: speech and at most 200 ms of its silence
    assert len(paused[0].utterance) <= len(silence(500) + speech_only("hours")) + ms_to_bytes(TRAILING_SILENCE_MS + 300)

    events = _feed(detector, silence(600))  # 2.1 s of silence: past max_silence_ms
    assert [type(e) for e in events] == [SpeechStopped]


def test_a_complete_verdict_ends_the_turn_at_the_next_frame_an_unfinished_one_waits() -> None:

    complete = TurnDetector(SEMANTIC)
    events = _feed(complete, silence(500) + speech_only("hours") + silence(400))
    paused = next(e for e in events if isinstance(e, SpeechPaused))
    complete.decide(SEMANTIC.min_silence_ms, paused.last_voiced)
    assert [type(e) for e in _feed(complete, silence(20))] == [SpeechStopped]

    unfinished = TurnDetector(SEMANTIC)
    events = _feed(unfinished, silence(500) + speech_only("hours") + silence(400))
    paused = next(e for e in events if isinstance(e, SpeechPaused))
    unfinished.decide(SEMANTIC.max_silence_ms, paused.last_voiced)
    assert _feed(unfinished, silence(1000)) == []  # 1.4 s of silence: still the visitor's turn
    stopped = _feed(unfinished, silence(700))
    assert [type(e) for e in stopped] == [SpeechStopped]
    assert stopped[0].last_voiced == paused.last_voiced  # no speech since the pause: its transcript holds


def test_a_verdict_about_an_older_pause_changes_nothing() -> None:

    detector = TurnDetector(SEMANTIC)
    events = _feed(detector, silence(500) + speech_only("hours") + silence(400))
    first = next(e for e in events if isinstance(e, SpeechPaused))
    _feed(detector, speech_only("booking"))  # the visitor goes on
    detector.decide(SEMANTIC.min_silence_ms, first.last_voiced)  # a late verdict on the first pause
    assert _feed(detector, silence(100)) == []


def test_semantic_settings_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="min_silence_ms < end_silence_ms <= max_silence_ms"):
        TurnConfig(semantic=True, min_silence_ms=700, end_silence_ms=600, max_silence_ms=2000)
    TurnConfig(semantic=False, min_silence_ms=700, end_silence_ms=600)  # only checked when it is on


def test_semantic_end_of_turn_needs_a_pause_shorter_than_the_end_silence() -> None:
    # review 16, finding 5: with min == end the turn ended at the pause, before any verdict could count
    with pytest.raises(ValueError, match="min_silence_ms < end_silence_ms <= max_silence_ms"):
        TurnConfig(semantic=True, min_silence_ms=600, end_silence_ms=600, max_silence_ms=2000)
    TurnConfig(semantic=True, min_silence_ms=580, end_silence_ms=600, max_silence_ms=600)


@pytest.mark.parametrize("meanwhile", ["speech_resumed", "turn_ended"])
def test_a_verdict_racing_the_speech_detection_thread_cannot_shorten_the_next_silence(monkeypatch, meanwhile) -> None:
    """Review 16, finding 3: decide() runs on the event loop while Silero's thread may be inside
    process_voiced on the same detector. Here the thread's frames run between decide()'s check and its
    store (injected where decide computes the frames): the verdict on the old pause must not apply to
    the speech that came meanwhile, nor to the next turn."""
    from voice.audio import vad

    detector = TurnDetector(SEMANTIC)
    voiced, quiet = bytes(FRAME_BYTES), bytes(FRAME_BYTES)  # decided by the flags below, not the audio
    for _ in range(20):
        detector.process_voiced(voiced, True)
    paused = [detector.process_voiced(quiet, False) for _ in range(15)][-1]
    assert isinstance(paused, SpeechPaused)

    real_frames = vad._frames

    def thread_runs_meanwhile(ms: int) -> int:
        monkeypatch.setattr(vad, "_frames", real_frames)
        if meanwhile == "speech_resumed":
            detector.process_voiced(voiced, True)
        else:
            detector.decide(SEMANTIC.min_silence_ms, paused.last_voiced)  # the first verdict ends the turn
            assert isinstance(detector.process_voiced(quiet, False), SpeechStopped)
            for _ in range(10):
                detector.process_voiced(voiced, True)  # the next turn starts
        return real_frames(ms)

    monkeypatch.setattr(vad, "_frames", thread_runs_meanwhile)
    detector.decide(SEMANTIC.min_silence_ms, paused.last_voiced)  # 300 ms, for the old pause
    events = [detector.process_voiced(quiet, False) for _ in range(15)]
    # 300 ms of silence after the new speech: a pause asking for its own verdict, not the end of the turn
    assert [type(e) for e in events if e is not None] == [SpeechPaused]
    assert detector.in_speech


# --- a phone's 8 kHz ------------------------------------------------------------------------


def narrowband(pcm: bytes) -> bytes:
    """Fixture audio as a phone line carries it: 8 kHz, nothing above 4 kHz."""
    return soxr.resample(np.frombuffer(pcm, dtype="<i2"), PIPELINE_RATE, NARROWBAND_RATE).astype("<i2").tobytes()


def detect_narrowband(pcm: bytes, config: TurnConfig = DEFAULT) -> list[TurnEvent]:
    detector = TurnDetector(config, sample_rate=NARROWBAND_RATE)
    frames = Reframer(frame_bytes(NARROWBAND_RATE)).push(pcm)
    return [event for frame in frames if (event := detector.process(frame)) is not None]


@pytest.mark.parametrize("name", SENTENCES)
def test_at_8_khz_a_sentence_is_the_turn_it_is_at_16_khz(name: str) -> None:
    # given a sentence, and the same sentence as a phone carries it
    wide = padded(name)
    narrow = narrowband(wide)

    # when each is heard at its own rate
    wide_started, wide_stopped = detect(wide)
    events = detect_narrowband(narrow)

    # then the phone's is one turn too, starting and ending within two frames of the wideband one
    assert kinds(events) == [SpeechStarted, SpeechStopped]
    started, stopped = events
    assert isinstance(started, SpeechStarted) and isinstance(stopped, SpeechStopped)
    assert abs(started.frame_index - wide_started.frame_index) <= 2
    assert abs(stopped.frame_index - wide_stopped.frame_index) <= 2
    assert stopped.speech_ms == pytest.approx(wide_stopped.speech_ms, abs=2 * FRAME_MS)
    # and its audio is the line's own 8 kHz samples, as they came
    size = frame_bytes(NARROWBAND_RATE)
    offset = started.frame_index * size - len(started.pre_roll)
    assert stopped.utterance == narrow[offset : offset + len(stopped.utterance)]
    assert abs(len(stopped.utterance) - len(wide_stopped.utterance) // 2) <= 2 * size


def test_a_detector_takes_frames_of_its_own_rate_only() -> None:
    narrow = TurnDetector(sample_rate=NARROWBAND_RATE)
    assert narrow.sample_rate == NARROWBAND_RATE
    assert narrow.process(bytes(frame_bytes(NARROWBAND_RATE))) is None
    with pytest.raises(ValueError, match="320-byte frame"):
        narrow.process(bytes(FRAME_BYTES))
    with pytest.raises(ValueError, match="webrtcvad hears"):
        TurnDetector(sample_rate=44100)


def test_a_classifier_of_another_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="hears 16000 Hz, not 8000"):
        TurnDetector(DEFAULT, WebrtcClassifier(2, PIPELINE_RATE), sample_rate=NARROWBAND_RATE)


def test_webrtcvad_given_up_for_stays_at_the_detectors_rate() -> None:
    detector = TurnDetector(sample_rate=NARROWBAND_RATE)
    detector.use_webrtcvad()
    assert detector.classifier.sample_rate == NARROWBAND_RATE
    assert detector.process(bytes(frame_bytes(NARROWBAND_RATE))) is None
