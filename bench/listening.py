"""Speech detection over the listening set: each detector through the real TurnDetector.

    .venv/bin/python -m bench.listening --json
    .venv/bin/python -m bench.listening --sweep --seed 1      # tune Silero's threshold on the tuning seed

The set (bench/listening_set.py) is generated here from the speech fixtures and synthetic noise,
music and babble; the evaluation seed differs from the tuning seed, so the figures are not those the
threshold was chosen on. Each detector sees every clip as a session would: 20 ms frames through
``voice.audio.vad.TurnDetector`` with the assistant's default turn settings. Figures, per condition
(background and SNR) and over the set:

* false_starts_per_min: SpeechStarted whose turn overlaps no true speech, per minute of non-speech;
* false_speech_pct: share of the time away from true speech (more than 0.3 s before it or 1 s after
  it) spent inside a turn, between SpeechStarted and SpeechStopped;
* missed_speech_pct: true active speech frames left out of every turn's utterance (what speech-to-text
  receives: pre-roll + speech + trailing silence);
* end_delay_ms p50/p95: from the true end of a sentence to the SpeechStopped of the turn holding it
  (end_silence_ms is 600 of it); turns that ran into the next sentence or were capped count as
  ``unended``; ``cut_offs`` are turns that stopped inside a true speech span;
* false_barge_ins_per_10min: SpeechStarted over background only while the assistant speaks
  (barge_in_min_ms applies), per 10 minutes;
* cpu_us_per_frame: this process's CPU time for TurnDetector.process, per 20 ms frame (best of
  --rounds passes over a one-minute sample); for Silero also with 32 sessions' 40 ms messages
  scored together by SileroBatcher, as the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from bench.common import summary
from bench.listening_set import EVALUATION_SEED, FRAME, RATE, Clip, evaluation_set
from voice.audio.frames import FRAME_BYTES, FRAME_MS, PIPELINE_RATE
from voice.audio.silero import speech_classifier
from voice.audio.vad import SILERO, SpeechStarted, SpeechStopped, TurnConfig, TurnDetector
from voice.pipeline.input import AudioInput

FRAME_SAMPLES = FRAME
PRE_S, POST_S = 0.3, 1  # false_speech_pct: a turn may be open this long before and after true speech


@dataclass
class Tally:
    non_speech_s: float = 0.0
    false_starts: int = 0
    active_frames: int = 0
    missed_frames: int = 0
    end_delays_ms: list[float] = field(default_factory=list)
    unended: int = 0
    cut_offs: int = 0
    quiet_frames: int = 0
    false_speech_frames: int = 0
    playback_s: float = 0.0
    false_barge_ins: int = 0

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def figures(self) -> dict[str, object]:
        delays = summary(self.end_delays_ms, digits=0)
        return {
            "false_starts_per_min": round(self.false_starts / (self.non_speech_s / 60), 2)
            if self.non_speech_s
            else None,
            "false_speech_pct": round(100 * self.false_speech_frames / self.quiet_frames, 2)
            if self.quiet_frames
            else None,
            "missed_speech_pct": round(100 * self.missed_frames / self.active_frames, 2)
            if self.active_frames
            else None,
            "end_delay_ms": {"p50": delays["p50"], "p95": delays["p95"], "n": delays["n"]},
            "unended": self.unended,
            "cut_offs": self.cut_offs,
            "false_barge_ins_per_10min": round(self.false_barge_ins / (self.playback_s / 600), 2)
            if self.playback_s
            else None,
        }


def frames_of(clip: Clip) -> list[bytes]:
    pcm = clip.pcm
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def run_clip(config: TurnConfig, clip: Clip) -> Tally:
    detector = TurnDetector(config, speech_classifier(config))
    detector.assistant_speaking = clip.assistant_speaking
    tally = Tally()
    if clip.assistant_speaking:
        tally.playback_s = clip.seconds
        for frame in frames_of(clip):
            if isinstance(detector.process(frame), SpeechStarted):
                tally.false_barge_ins += 1
        return tally
    # Turns as (first sample of the utterance, sample at the stop, samples of the utterance or None).
    turns: list[list[int | None]] = []
    for frame in frames_of(clip):
        event = detector.process(frame)
        now = event.frame_index * FRAME_SAMPLES if event else 0
        if isinstance(event, SpeechStarted):
            turns.append([now - len(event.pre_roll) // 2, None, None])
        elif isinstance(event, SpeechStopped):
            turns[-1][1:] = [now, len(event.utterance) // 2]
    end = len(clip.pcm) // 2
    frames = len(clip.active)
    covered, in_turn, near_speech = np.zeros(frames, bool), np.zeros(frames, bool), np.zeros(frames, bool)
    speech = clip.speech
    for s_start, s_end in speech:  # where a turn may rightly be open: pre-roll before, end silence after
        near_speech[
            max(0, int(s_start - PRE_S * RATE) // FRAME_SAMPLES) : int(s_end + POST_S * RATE) // FRAME_SAMPLES
        ] = True
    for turn in turns:
        start, stop, length = turn
        stop = end if stop is None else stop
        heard_end = start + length if length is not None else end
        covered[start // FRAME_SAMPLES : -(-heard_end // FRAME_SAMPLES)] = True
        in_turn[start // FRAME_SAMPLES : stop // FRAME_SAMPLES] = True
        if not any(start < s_end and stop > s_start for s_start, s_end in speech):
            tally.false_starts += 1
        if turn[1] is not None and any(s_start < stop < s_end for s_start, s_end in speech):
            tally.cut_offs += 1
    for index, (_, s_end) in enumerate(speech):
        next_start = speech[index + 1][0] if index + 1 < len(speech) else end
        holding = [t for t in turns if t[0] < s_end and (t[1] is None or t[1] >= s_end)]
        stops = [t[1] for t in holding if t[1] is not None and t[1] < next_start]
        if stops:
            tally.end_delays_ms.append((min(stops) - s_end) * 1000 / RATE)
        else:
            tally.unended += 1
    active = clip.active
    tally.active_frames = int(active.sum())
    tally.missed_frames = int((active & ~covered[: len(active)]).sum())
    tally.quiet_frames = int((~near_speech).sum())
    tally.false_speech_frames = int((in_turn & ~near_speech).sum())
    tally.non_speech_s = clip.seconds - sum(e - s for s, e in speech) / RATE
    return tally


def cpu_per_frame(config: TurnConfig, frames: list[bytes], rounds: int) -> float:
    """Best of `rounds`: CPU µs per TurnDetector.process call."""
    best = float("inf")
    for _ in range(rounds):
        detector = TurnDetector(config, speech_classifier(config))
        process = detector.process
        started = time.process_time()
        for frame in frames:
            process(frame)
        best = min(best, (time.process_time() - started) / len(frames) * 1e6)
    return round(best, 1)


def batched_cpu_per_frame(config: TurnConfig, frames: list[bytes], sessions: int, rounds: int) -> float:
    """CPU µs per frame when `sessions` sessions' 40 ms messages are scored together (SileroBatcher.run)."""
    from voice.audio.silero import SileroBatcher, _Job, shared_model

    batcher = SileroBatcher(shared_model())
    per_session = len(frames) // sessions // 2 * 2
    streams = [frames[i * per_session : (i + 1) * per_session] for i in range(sessions)]
    best = float("inf")
    for _ in range(rounds):
        detectors = [TurnDetector(config, speech_classifier(config)) for _ in range(sessions)]
        started = time.process_time()
        for offset in range(0, per_session, 2):
            batcher.run([_Job(d, s[offset : offset + 2]) for d, s in zip(detectors, streams, strict=True)])
        best = min(best, (time.process_time() - started) / (per_session * sessions) * 1e6)
    return round(best, 1)


def loop_cost(config: TurnConfig, frames: list[bytes], sessions: int = 32) -> dict[str, float]:
    """CPU of the event loop's thread per 40 ms message (the widget's), `sessions` sessions at once:
    detection inline (AudioInput.push) versus AudioInput.listen, which batches Silero's work on its
    thread."""
    messages = [a + b for a, b in zip(frames[::2], frames[1::2], strict=False)]
    per_session = len(messages) // sessions

    async def run(inline: bool) -> float:
        inputs = [AudioInput(PIPELINE_RATE, config) for _ in range(sessions)]

        async def session(audio: AudioInput, mine: list[bytes]) -> None:
            for message in mine:
                audio.push(message) if inline else await audio.listen(message)
                await asyncio.sleep(0)

        started = time.thread_time()
        await asyncio.gather(
            *(session(a, messages[i * per_session : (i + 1) * per_session]) for i, a in enumerate(inputs))
        )
        return round((time.thread_time() - started) / (per_session * sessions) * 1e6, 1)

    return {
        "sessions": sessions,
        "inline_loop_cpu_us_per_message": asyncio.run(run(True)),
        "listen_loop_cpu_us_per_message": asyncio.run(run(False)),
    }


def evaluate(configs: dict[str, TurnConfig], clips: list[Clip]) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    for label, config in configs.items():
        total, by_condition = Tally(), defaultdict(Tally)
        for clip in clips:
            tally = run_clip(config, clip)
            condition = "clean" if clip.snr_db is None else f"{clip.background}@{clip.snr_db}dB"
            by_condition[condition].add(tally)
            total.add(tally)
        results[label] = {"all": total.figures(), "conditions": {k: v.figures() for k, v in by_condition.items()}}
    return results


def markdown(report: dict) -> str:
    """One table, a row per condition; each cell holds the detectors' figures in order, "a · b"."""
    detectors = [r for r in report["detectors"].values() if "all" in r]
    columns = [
        ("false starts /min", "false_starts_per_min"),
        ("false speech %", "false_speech_pct"),
        ("missed speech %", "missed_speech_pct"),
        ("end delay p50 ms", "p50"),
        ("end delay p95 ms", "p95"),
        ("unended", "unended"),
        ("false barge-ins /10 min", "false_barge_ins_per_10min"),
    ]
    lines = [
        "| condition | " + " | ".join(title for title, _ in columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for condition in ["all", *detectors[0]["conditions"]]:
        cells = [condition]
        for _, key in columns:
            values = []
            for result in detectors:
                figures = result["all"] if condition == "all" else result["conditions"][condition]
                value = figures["end_delay_ms"][key] if key in ("p50", "p95") else figures[key]
                values.append("—" if value is None else f"{value:g}")
            cells.append(" · ".join(values))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=EVALUATION_SEED, help="the set's seed (1 tunes, 2 evaluates)")
    parser.add_argument("--playback-s", type=float, default=600, help="seconds of playback clip per condition")
    parser.add_argument("--rounds", type=int, default=5, help="CPU passes, best kept")
    parser.add_argument("--sweep", action="store_true", help="Silero at thresholds 0.3-0.9 (tuning)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="the tables of docs/benchmarks.md")
    args = parser.parse_args()

    default = TurnConfig()
    configs = {f"webrtcvad(aggressiveness={default.aggressiveness})": default}
    silero = TurnConfig(detector=SILERO)
    configs[f"silero(threshold={silero.speech_threshold})"] = silero
    if args.sweep:
        configs = {
            f"silero(threshold={t})": TurnConfig(detector=SILERO, speech_threshold=t)
            for t in np.arange(0.3, 0.95, 0.1).round(2)
        }
    clips = list(evaluation_set(args.seed, playback_s=args.playback_s))
    results = evaluate(configs, clips)

    sample = [frame for clip in clips if clip.background == "music" for frame in frames_of(clip)][
        : 60 * 1000 // FRAME_MS
    ]
    for label, config in configs.items():
        detector = TurnDetector(config, speech_classifier(config))
        results[label]["detector_in_use"] = detector.detector
        results[label]["cpu_us_per_frame"] = cpu_per_frame(config, sample, args.rounds)
        if config.detector == SILERO and not args.sweep:
            results[label]["cpu_us_per_frame_batched_32_sessions"] = batched_cpu_per_frame(
                config, sample, 32, args.rounds
            )
    if not args.sweep:
        results["silero_event_loop"] = loop_cost(silero, sample[:3000])
        results["webrtcvad_event_loop"] = loop_cost(default, sample[:3000])
    seconds = sum(clip.seconds for clip in clips)
    report = {
        "seed": args.seed,
        "audio_min": round(seconds / 60, 1),
        "playback_min": round(sum(c.seconds for c in clips if c.assistant_speaking) / 60, 1),
        "detectors": results,
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    if args.markdown:
        print(markdown(report))
        return 0
    print(f"seed {args.seed}: {report['audio_min']} min of audio, {report['playback_min']} min of it playback")
    for label, result in results.items():
        if "all" not in result:
            print(label, result)
            continue
        print(f"\n{label} (in use: {result['detector_in_use']}, {result['cpu_us_per_frame']} µs/frame)")
        print(
            f"{'condition':14} {'false/min':>9} {'false%':>7} {'missed%':>8} {'end p50':>8} {'end p95':>8} "
            f"{'unended':>7} {'cut':>4} {'barge/10min':>11}"
        )
        for condition, f in [("ALL", result["all"]), *result["conditions"].items()]:
            delay = f["end_delay_ms"]
            print(
                f"{condition:14} {f['false_starts_per_min']!s:>9} {f['false_speech_pct']!s:>7} "
                f"{f['missed_speech_pct']!s:>8} "
                f"{delay['p50']!s:>8} {delay['p95']!s:>8} {f['unended']:>7} {f['cut_offs']:>4} "
                f"{f['false_barge_ins_per_10min']!s:>11}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
