"""Concurrent voice sessions against one daphne process with simulated providers of fixed latency.

    .venv/bin/python -m bench.voice --sessions 200 --seconds 60 --json
    .venv/bin/python -m bench.voice --sessions 200 --seconds 60 --runs 3 --json

Each session streams the speech fixtures in real time (40 ms frames, as the widget sends them; each
frame leaves once its audio has been "spoken", like a microphone), waits for the reply and
"plays" it, and interrupts every second reply by speaking over it. The microphone stays open between
the words, as the widget's does: silence frames go on for the whole session (``--line continuous``,
the default; ``--line speech`` sends the words only, as this bench did before 2026-12-07). daphne is pinned to one core,
the clients, PostgreSQL and Redis run on the other(s). Prints what it ran on (cores, load average,
processor, pinning, Python, the simulated latencies), the figures, and with --json one JSON object as
the last line. ``--runs N`` runs the whole measurement N times in a row, a fresh server each time on the
same platform, and prints each run's p50/p95 and the spread of the runs' p95s; the JSON line then holds
``runs`` (each run's figures), ``spread`` and, at the top level, the figures of all runs together.

endpoint_delay_ms: end of speech in the audio (sent) → speech.stopped received.
voice_to_voice_ms: end of the visitor's last word → first audio of the reply received, what a visitor
    waits. The end of the words is where the fixture's energy ends (``speech_bounds_ms``), at the time
    the client "spoke" that sample (it streams in real time from a known start); the first audio is the
    arrival of the reply's first binary frame. One value per question whose reply sent audio:
    - every question the visitor asks, including one whose reply the visitor later interrupts (the
      bench barges in only after that reply's first audio arrived, so the wait had ended);
    - the interrupting speech, which is a question too: from the end of its words to its own reply's
      first audio (``voice_to_voice_by_kind_ms`` shows these apart, as ``after_barge_in``).
    Not counted: the barge-in itself (that is bargein_ms), and a reply without audio.
overhead_ms: the server's own time beyond the providers': turn detected → first reply audio sent
    (the server's first_audio_ms) minus the simulated providers' configured latencies (the speech-to-text
    latency the reply waited for, first token, the words of the first piece at the configured rate,
    text-to-speech first byte); bench.common.reply_timing. A preemptive reply (``"preemptive": true`` in
    its metrics) counts here only when its audio was not ready when the turn ended
    (``ready_before_turn_end_ms`` = 0), from its own start.
release_ms: a preemptive reply whose audio was ready before the turn ended: turn detected → its first
    audio sent (its first_audio_ms), how long releasing held audio takes.
bargein_ms: first frame of interrupting speech sent → response.interrupted received, minus the
    barge-in minimum.
wasted_llm_tokens_pct: chat-model tokens (input + output) of preemptive replies dropped because the
    visitor went on speaking (usage events with the key prefix ``model:preemptive:``) over all
    chat-model token events of the run, read from the bench organization's usage after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from bench.common import (
    ANSWERS,
    LINES,
    STT_MODES,
    AudioLine,
    Samples,
    ServerUsage,
    callers_without_collections,
    combine_runs,
    expected_stt_ms,
    fresh_platform,
    machine_info,
    observed_pinning,
    pinned_daphne,
    print_machine,
    print_runs,
    print_voice_figures,
    reply_timing,
    runs_json,
    simulated_latency_env,
    stt_env,
    summary,
    usage_mark,
    wasted_figures,
)

ROOT = Path(__file__).resolve().parent.parent
LATENCY = {
    "stt_ms": 150.0,
    "stt_stream_ms": 60.0,  # a streaming transcript's commit (AURA_SIMULATED_STT_STREAM_MS)
    "llm_first_token_ms": 300.0,
    "llm_tokens_per_s": 60.0,
    "tts_first_byte_ms": 120.0,
}
STT_LATENCIES = (LATENCY["stt_stream_ms"], LATENCY["stt_ms"])
QUESTIONS = ("hours.wav", "booking.wav", "long_question.wav")
LINE_RATE = 16000  # the visitors' microphones (the fixtures' rate)
BARGE_IN_MIN_MS = 250
END_SILENCE_MS = 600


def _loud_windows(pcm: bytes, rate: int) -> tuple[Any, int]:
    """The 10 ms windows of 16-bit PCM with speech energy (their indices), and the samples in a window."""
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    window = rate // 100
    energy = np.sqrt(np.mean(samples[: len(samples) // window * window].reshape(-1, window) ** 2, axis=1))
    return np.nonzero(energy > 300)[0], window


def hesitant(pcm: bytes, rate: int, pause_ms: int) -> tuple[bytes, int]:
    """The question with its longest pause between words stretched to ``pause_ms`` (a visitor who hesitates
    mid-sentence: a reply started in that pause is thrown away when they go on)."""
    loud, window = _loud_windows(pcm, rate)
    gaps = loud[1:] - loud[:-1]  # windows from one loud window to the next
    longest = int(gaps.argmax())
    start, length_ms = int(loud[longest] + 1) * window * 2, int(gaps[longest] - 1) * 10
    extra = bytes(max(0, pause_ms - length_ms) * rate // 1000 * 2)
    return pcm[:start] + extra + pcm[start:], rate


def speech_bounds_ms(pcm: bytes, rate: int) -> tuple[float, float]:
    """First and last 10 ms window with speech energy: where the words start and end in the WAV."""
    loud, _ = _loud_windows(pcm, rate)
    return float(loud[0] * 10), float((loud[-1] + 1) * 10)


def stage_excess(metrics: dict, reply_text: str) -> dict[str, float]:
    """Each stage's time beyond the simulated provider's own (an ordinary reply's metrics, in ms):
    speech-to-text, first token, first piece of text, text-to-speech first byte, and what is left between
    them."""
    first_piece_words = (provider_ms(reply_text) - _fixed_ms()) / 1000 * LATENCY["llm_tokens_per_s"]
    parts = {
        "stt": (metrics["stt_ms"] or 0.0) - expected_stt_ms(metrics["stt_ms"], STT_LATENCIES),
        "llm_first_token": metrics["llm_first_token_ms"] - LATENCY["llm_first_token_ms"],
        "llm_first_sentence": metrics["llm_first_sentence_ms"]
        - metrics["llm_first_token_ms"]
        - first_piece_words / LATENCY["llm_tokens_per_s"] * 1000,
        "tts_first_byte": metrics["tts_first_byte_ms"] - LATENCY["tts_first_byte_ms"],
    }
    measured = (metrics["stt_ms"] or 0.0) + metrics["llm_first_sentence_ms"] + metrics["tts_first_byte_ms"]
    parts["between_stages"] = metrics["first_audio_ms"] - measured
    return parts


def _fixed_ms() -> float:
    return LATENCY["stt_ms"] + LATENCY["llm_first_token_ms"] + LATENCY["tts_first_byte_ms"]


def provider_ms(reply_text: str) -> float:
    """The configured providers' time to a reply's first audio, batch speech-to-text included."""
    return LATENCY["stt_ms"] + reply_provider_ms(reply_text)


def reply_provider_ms(reply_text: str) -> float:
    """The chat model's and voice's configured time to a reply's first audio: first token, the words until
    the first piece the server sends to text-to-speech (voice.text.sentences) at the configured rate, and
    text-to-speech first byte."""
    from voice.text.sentences import SentenceAggregator

    aggregator = SentenceAggregator()
    pieces: list[str] = []
    for index, word in enumerate(reply_text.split(" ")):
        pieces = aggregator.push(word if index == 0 else " " + word)
        if pieces:
            words_until_piece = index + 1
            break
    else:
        words_until_piece = len(reply_text.split(" "))
    stream_ms = (words_until_piece - 1) / LATENCY["llm_tokens_per_s"] * 1000
    return LATENCY["llm_first_token_ms"] + stream_ms + LATENCY["tts_first_byte_ms"]


def count_reply(results: Results, metrics: dict, text: str) -> None:
    """A reply's overhead or release time (bench.common.reply_timing), and for an ordinary reply where
    its overhead went."""
    timing = reply_timing(metrics, reply_provider_ms=reply_provider_ms(text), stt_latencies=STT_LATENCIES)
    if timing is None:
        return
    kind, value = timing
    results.samples.values[f"{kind}_ms"].append(value)
    if kind == "overhead" and not metrics.get("preemptive") and metrics.get("llm_first_sentence_ms") is not None:
        for stage, excess in stage_excess(metrics, text).items():
            results.stages.setdefault(stage, []).append(excess)


@dataclass
class Results:
    turns: int = 0
    samples: Samples = field(default_factory=Samples)  # endpoint, voice_to_voice, overhead, release, bargein
    voice_to_voice_by_kind: dict[str, list[float]] = field(
        default_factory=lambda: {"question": [], "after_barge_in": []}
    )
    stale: int = 0
    errors: list[str] = field(default_factory=list)
    client_lag_ms: list[float] = field(default_factory=list)
    # Where the overhead goes: each stage's time beyond its simulated latency (server's own figures).
    stages: dict[str, list[float]] = field(default_factory=dict)

    def voice_to_voice(self, words_end: float, first_audio: float | None, kind: str) -> None:
        """End of the visitor's words → first audio of the reply received (monotonic seconds), if it came."""
        if first_audio is not None:
            value = (first_audio - words_end) * 1000
            self.samples.values["voice_to_voice_ms"].append(value)
            self.voice_to_voice_by_kind[kind].append(value)


async def run_session(
    ramp_s: float,
    index: int,
    base_url: str,
    key: str,
    origin: str,
    seconds: float,
    results: Results,
    wavs: dict[str, tuple[bytes, int]],
    frame_ms: int = 20,
    *,
    continuous: bool = True,
) -> None:
    """One visitor; ``continuous``: the microphone sends silence between the words, as the widget does
    (bench.common.AudioLine)."""
    from tests.voice.client import VoiceClient, request_session, silence

    await asyncio.sleep(random.random() * ramp_s)  # visitors arrive over the ramp, not all in one instant
    status, body = await asyncio.to_thread(request_session, base_url, key, origin, f"bench-{index}")
    if status != 200:
        results.errors.append(f"session {index}: {status} {body}")
        return
    client = await VoiceClient.connect(body["ws_url"], origin)
    frame_bytes = LINE_RATE * 2 * frame_ms // 1000
    line = AudioLine(
        client.ws.send, frame_bytes=frame_bytes, frame_s=frame_ms / 1000, silence=b"\0\0", continuous=continuous
    )
    try:
        await client.start(LINE_RATE)
        line.start()
        await client.wait_for("response.done", response_id=1, timeout=30)
        deadline = time.monotonic() + seconds
        reply_id = 1
        turn = 0
        while time.monotonic() < deadline:
            turn += 1
            name = QUESTIONS[(index + turn) % len(QUESTIONS)]
            pcm, rate = wavs[name]
            _, speech_end = speech_bounds_ms(pcm, rate)
            stopped_before = len(client.of_type("speech.stopped"))
            words = pcm + silence(400)
            begun, said = line.say(words)
            started = await begun
            words_end, kind = started + speech_end / 1000, "question"
            results.client_lag_ms.append(line.lateness_ms(words, started, await said))
            await client.wait_for("transcript.final", timeout=30)
            stops = [r for r in client.events if r.event["type"] == "speech.stopped"][stopped_before:]
            if stops:
                results.samples.values["endpoint_delay_ms"].append((stops[0].at - words_end) * 1000)
            reply_id += 1
            if turn % 2 == 0:
                # Barge in while the reply plays: the interruption is a question that gets its own reply.
                results.voice_to_voice(words_end, await client.wait_audio(reply_id, timeout=30), kind)
                await asyncio.sleep(random.random() * 1.5)
                interrupt_pcm, irate = wavs["interrupt.wav"]
                onset, interrupt_end = speech_bounds_ms(interrupt_pcm, irate)
                begun, streaming = line.say(interrupt_pcm)
                stream_started = await begun
                words_end, kind = stream_started + interrupt_end / 1000, "after_barge_in"
                event = await client.wait_for("response.interrupted", timeout=10, response_id=reply_id)
                at = client.first("response.interrupted", response_id=reply_id).at
                results.samples.values["bargein_ms"].append(
                    (at - (stream_started + onset / 1000)) * 1000 - BARGE_IN_MIN_MS
                )
                await client.send(
                    {
                        "type": "response.played",
                        "response_id": event["response_id"],
                        "played_ms": client.played_ms(reply_id, at),
                    }
                )
                await streaming
                results.turns += 1
                reply_id += 1
            done = await client.wait_for("response.done", response_id=reply_id, timeout=30)
            audio = client.audio.get(reply_id)
            results.voice_to_voice(words_end, audio[0][0] if audio else None, kind)
            count_reply(results, done["metrics"], done["text"])
            results.turns += 1
            # Let the reply finish playing before the next question, like a polite visitor.
            audio_ms = done["metrics"]["audio_ms"] or 0
            first = client.audio.get(reply_id, [(time.monotonic(), 0)])[0][0]
            await asyncio.sleep(max(0.0, first + audio_ms / 1000 - time.monotonic()) + 0.3)
        await line.stop()
        await client.send({"type": "session.end"})
        await client.wait_closed(10)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop on them
        results.errors.append(f"session {index}: {type(exc).__name__}: {exc}"[:300])
    finally:
        await line.stop()
        results.stale += client.stale_chunks
        if client.close_code is None:
            await client.close()


def prepare(detector: str = "webrtcvad", *, preemptive: bool = True) -> tuple[str, str]:
    # Every simulated visitor comes from 127.0.0.1: lift the per-IP and per-key session limits for the run.
    organization = fresh_platform(
        "voice",
        AURA_WIDGET_SESSIONS_PER_IP_PER_MINUTE="100000",
        AURA_WIDGET_SESSIONS_PER_KEY_PER_MINUTE="100000",
    )
    origin = "http://bench.localhost"
    return configure_organization(organization, origin, detector, preemptive=preemptive), origin


def configure_organization(
    organization: Any, origin: str, detector: str = "webrtcvad", *, preemptive: bool = True
) -> str:
    """The organization's assistants on simulated speech-to-text with the bench's turn settings (replies
    started in the pause unless ``preemptive`` is False), no plan (so no concurrent-session limit or cap),
    its widget key allowing ``origin``; returns that key."""
    from django_tenants.utils import tenant_context

    from billing.models import Subscription
    from tenants.models import WidgetKey
    from voice.models import Assistant

    with tenant_context(organization):
        Assistant.objects.update(
            stt_provider="simulated",
            barge_in_min_ms=BARGE_IN_MIN_MS,
            end_silence_ms=END_SILENCE_MS,
            speech_detector=detector,
            preemptive_replies=preemptive,
        )
    # No plan: no concurrent-session limit or cap (a new organization's trial allows 2 sessions at a time).
    Subscription.objects.filter(organization=organization).delete()
    key = WidgetKey.objects.get(organization=organization)
    key.allowed_origins = [origin]
    key.save()
    return key.key


async def run(
    args: argparse.Namespace, base_url: str, key: str, origin: str, daphne_pid: int
) -> tuple[dict[str, Any], Samples]:
    """One run: the sessions, then the figures (and the run's raw values, to combine runs)."""
    from tests.voice.client import read_wav

    wavs = {name: read_wav(name) for name in (*QUESTIONS, "interrupt.wav")}
    if any(rate != LINE_RATE for _, rate in wavs.values()):
        raise SystemExit(f"the fixtures must be at {LINE_RATE} Hz, the visitors' microphones: {wavs.keys()}")
    if args.hesitation_ms:
        wavs.update({name: hesitant(*wavs[name], args.hesitation_ms) for name in QUESTIONS})
    results = Results()
    load = [round(x, 2) for x in os.getloadavg()]
    mark = await asyncio.to_thread(usage_mark)
    with callers_without_collections():
        async with ServerUsage(daphne_pid, steady=(args.ramp, args.seconds)) as usage:
            await asyncio.gather(
                *(
                    run_session(
                        args.ramp,
                        i,
                        base_url,
                        key,
                        origin,
                        args.seconds,
                        results,
                        wavs,
                        args.frame_ms,
                        continuous=args.line == "continuous",
                    )
                    for i in range(args.sessions)
                )
            )
    await asyncio.sleep(2)  # the last turns and their usage are being stored
    wasted = await asyncio.to_thread(wasted_figures, "bench", mark)
    result = {
        "load_average_at_start": load,
        "turns": results.turns,
        **results.samples.summaries(),
        "voice_to_voice_by_kind_ms": {kind: summary(v) for kind, v in results.voice_to_voice_by_kind.items()},
        **wasted,
        "stale_audio_chunks": results.stale,
        **usage.figures(args.sessions),
        "client_send_lag_ms": summary(results.client_lag_ms),
        "overhead_by_stage_ms": {stage: summary(values) for stage, values in results.stages.items()},
        "errors": len(results.errors),
        "error_samples": results.errors[:5],
    }
    return result, results.samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the sessions arrive")
    parser.add_argument("--frame-ms", type=int, default=40, help="audio per message the clients send (the widget: 40)")
    parser.add_argument("--detector", choices=["webrtcvad", "silero"], default="webrtcvad", help="speech detector")
    parser.add_argument("--runs", type=int, default=1, help="run the whole measurement this many times in a row")
    parser.add_argument("--answer", choices=ANSWERS, default="preemptive", help="when the reply starts")
    parser.add_argument("--stt", choices=STT_MODES, default="streaming", help="simulated speech-to-text")
    parser.add_argument(
        "--hesitation-ms", type=int, default=0, help="stretch each question's longest pause between words to this"
    )
    parser.add_argument(
        "--line",
        choices=LINES,
        default="continuous",
        help="continuous: the microphone (or phone line) sends for the whole session, silence between the words; "
        "speech: the words only",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--channel", choices=("widget", "phone"), default="widget", help="phone: bench.phone (sessions are calls)"
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.channel == "phone" and args.hesitation_ms:
        parser.error("--hesitation-ms is for the widget's fixtures; bench.phone does not stretch its questions")
    if args.channel == "phone":  # bench.phone builds on this module: it runs in its own process, not imported here
        phone = ["--calls", str(args.sessions), "--seconds", str(args.seconds), "--ramp", str(args.ramp)]
        phone += [
            "--runs",
            str(args.runs),
            "--answer",
            args.answer,
            "--stt",
            args.stt,
            "--line",
            args.line,
            *(["--json"] if args.json else []),
        ]
        os.execv(sys.executable, [sys.executable, "-m", "bench.phone", *phone])
    settings = {
        "sessions": args.sessions,
        "detector": args.detector,
        "seconds": args.seconds,
        "ramp_s": args.ramp,
        "frame_ms": args.frame_ms,
        "barge_in_min_ms": BARGE_IN_MIN_MS,
        "answer": args.answer,
        "stt": args.stt,
        "hesitation_ms": args.hesitation_ms,
        "line": args.line,
    }
    info = machine_info(LATENCY, END_SILENCE_MS, **settings)
    print_machine(info)
    key, origin = prepare(args.detector, preemptive=args.answer == "preemptive")
    env = {**simulated_latency_env(LATENCY), **stt_env(args.stt)}
    if os.environ.get("BENCH_ASYNCIO_DEBUG"):
        env["PYTHONASYNCIODEBUG"] = "1"
    runs: list[dict[str, Any]] = []
    samples: list[Samples] = []
    for number in range(1, args.runs + 1):
        with pinned_daphne(ROOT / ".data" / "bench-voice", env) as (base_url, daphne_pid):
            result, run_samples = uvloop.run(run(args, base_url, key, origin, daphne_pid))
            result["pinning"] = observed_pinning(daphne_pid, ROOT / ".data" / "bench-voice")
        if args.runs > 1:
            print(f"{'run':>22}: {number} of {args.runs}, load average at start {result['load_average_at_start']}")
        print(f"{'pinning seen':>22}: {result['pinning']}")
        print_voice_figures(result)
        runs.append(result)
        samples.append(run_samples)
    combined = combine_runs(runs, samples)
    if args.runs > 1:
        print_runs(combined)
    if args.json:
        print(json.dumps(runs_json(settings, info, runs, combined)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
