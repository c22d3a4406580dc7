"""Concurrent voice sessions against one daphne process with simulated providers of fixed latency.

    .venv/bin/python -m bench.voice --sessions 200 --seconds 60 --json

Each session streams the speech fixtures in real time (40 ms frames, as the widget sends them; each
frame leaves once its audio has been "spoken", like a microphone), waits for the reply and
"plays" it, and interrupts every second reply by speaking over it. daphne is pinned to one core,
the clients run on the other. Prints figures, and with --json one JSON object as the last line.

endpoint_delay_ms: end of speech in the audio (sent) → speech.stopped received.
overhead_ms: turn detected → first reply audio sent (server's first_audio_ms) minus the simulated
    providers' configured latencies (speech-to-text + first token + the words of the first sentence
    at the configured rate + text-to-speech first byte).
bargein_ms: first frame of interrupting speech sent → response.interrupted received, minus the
    barge-in minimum.
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

from bench.common import (
    ServerUsage,
    fresh_platform,
    pinned_daphne,
    print_voice_figures,
    simulated_latency_env,
    summary,
)

ROOT = Path(__file__).resolve().parent.parent
LATENCY = {"stt_ms": 150.0, "llm_first_token_ms": 300.0, "llm_tokens_per_s": 60.0, "tts_first_byte_ms": 120.0}
QUESTIONS = ("hours.wav", "booking.wav", "long_question.wav")
BARGE_IN_MIN_MS = 250
END_SILENCE_MS = 600


def speech_bounds_ms(pcm: bytes, rate: int) -> tuple[float, float]:
    """First and last 10 ms window with speech energy: where the words start and end in the WAV."""
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    window = rate // 100
    energy = np.sqrt(np.mean(samples[: len(samples) // window * window].reshape(-1, window) ** 2, axis=1))
    loud = np.nonzero(energy > 300)[0]
    return float(loud[0] * 10), float((loud[-1] + 1) * 10)


def stage_excess(metrics: dict, reply_text: str) -> dict[str, float]:
    """Each stage's time beyond the simulated provider's own (the reply's metrics, in ms): speech-to-text,
    first token, first sentence, text-to-speech first byte, and what is left between them."""
    first_sentence_words = (provider_ms(reply_text) - _fixed_ms()) / 1000 * LATENCY["llm_tokens_per_s"]
    parts = {
        "stt": metrics["stt_ms"] - LATENCY["stt_ms"],
        "llm_first_token": metrics["llm_first_token_ms"] - LATENCY["llm_first_token_ms"],
        "llm_first_sentence": metrics["llm_first_sentence_ms"]
        - metrics["llm_first_token_ms"]
        - first_sentence_words / LATENCY["llm_tokens_per_s"] * 1000,
        "tts_first_byte": metrics["tts_first_byte_ms"] - LATENCY["tts_first_byte_ms"],
    }
    measured = metrics["stt_ms"] + metrics["llm_first_sentence_ms"] + metrics["tts_first_byte_ms"]
    parts["between_stages"] = metrics["first_audio_ms"] - measured
    return parts


def _fixed_ms() -> float:
    return LATENCY["stt_ms"] + LATENCY["llm_first_token_ms"] + LATENCY["tts_first_byte_ms"]


def provider_ms(reply_text: str) -> float:
    from voice.text.sentences import SentenceAggregator

    aggregator = SentenceAggregator()
    pieces: list[str] = []
    for index, word in enumerate(reply_text.split(" ")):
        pieces = aggregator.push(word if index == 0 else " " + word)
        if pieces:
            words_until_sentence = index + 1
            break
    else:
        words_until_sentence = len(reply_text.split(" "))
    stream_ms = (words_until_sentence - 1) / LATENCY["llm_tokens_per_s"] * 1000
    return LATENCY["stt_ms"] + LATENCY["llm_first_token_ms"] + stream_ms + LATENCY["tts_first_byte_ms"]


@dataclass
class Results:
    turns: int = 0
    endpoint: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    bargein: list[float] = field(default_factory=list)
    stale: int = 0
    errors: list[str] = field(default_factory=list)
    client_lag_ms: list[float] = field(default_factory=list)
    # Where the overhead goes: each stage's time beyond its simulated latency (server's own figures).
    stages: dict[str, list[float]] = field(default_factory=dict)


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
) -> None:
    from tests.voice.client import VoiceClient, request_session, silence

    await asyncio.sleep(random.random() * ramp_s)  # visitors arrive over the ramp, not all in one instant
    status, body = await asyncio.to_thread(request_session, base_url, key, origin, f"bench-{index}")
    if status != 200:
        results.errors.append(f"session {index}: {status} {body}")
        return
    client = await VoiceClient.connect(body["ws_url"], origin)
    try:
        await client.start(16000)
        await client.wait_for("response.done", response_id=1, timeout=30)
        deadline = time.monotonic() + seconds
        reply_id = 1
        turn = 0
        while time.monotonic() < deadline:
            turn += 1
            name = QUESTIONS[(index + turn) % len(QUESTIONS)]
            pcm, rate = wavs[name]
            _, speech_end = speech_bounds_ms(pcm, rate)
            started = time.monotonic()
            stopped_before = len(client.of_type("speech.stopped"))
            sent_done = await client.stream(pcm + silence(400), rate, frame_ms=frame_ms)
            results.client_lag_ms.append((sent_done - started) * 1000 - (len(pcm) / 2 / rate * 1000 + 400))
            await client.wait_for("transcript.final", timeout=30)
            stops = [r for r in client.events if r.event["type"] == "speech.stopped"][stopped_before:]
            if stops:
                results.endpoint.append((stops[0].at - (started + speech_end / 1000)) * 1000)
            reply_id += 1
            if turn % 2 == 0:
                # Barge in while the reply plays: the interruption is a question that gets its own reply.
                await client.wait_audio(reply_id, timeout=30)
                await asyncio.sleep(random.random() * 1.5)
                interrupt_pcm, irate = wavs["interrupt.wav"]
                onset, _ = speech_bounds_ms(interrupt_pcm, irate)
                stream_started = time.monotonic()
                streaming = asyncio.create_task(client.stream(interrupt_pcm, irate, frame_ms=frame_ms))
                event = await client.wait_for("response.interrupted", timeout=10, response_id=reply_id)
                at = client.first("response.interrupted", response_id=reply_id).at
                results.bargein.append((at - (stream_started + onset / 1000)) * 1000 - BARGE_IN_MIN_MS)
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
            if done["metrics"]["first_audio_ms"] is not None:
                results.overhead.append(done["metrics"]["first_audio_ms"] - provider_ms(done["text"]))
                for stage, excess in stage_excess(done["metrics"], done["text"]).items():
                    results.stages.setdefault(stage, []).append(excess)
            results.turns += 1
            # Let the reply finish playing before the next question, like a polite visitor.
            audio_ms = done["metrics"]["audio_ms"] or 0
            first = client.audio.get(reply_id, [(time.monotonic(), 0)])[0][0]
            await asyncio.sleep(max(0.0, first + audio_ms / 1000 - time.monotonic()) + 0.3)
        await client.send({"type": "session.end"})
        await client.wait_closed(10)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop on them
        results.errors.append(f"session {index}: {type(exc).__name__}: {exc}"[:300])
    finally:
        results.stale += client.stale_chunks
        if client.close_code is None:
            await client.close()


def prepare(detector: str = "webrtcvad") -> tuple[str, str]:
    # Every simulated visitor comes from 127.0.0.1: lift the per-IP and per-key session limits for the run.
    organization = fresh_platform(
        "voice",
        AURA_WIDGET_SESSIONS_PER_IP_PER_MINUTE="100000",
        AURA_WIDGET_SESSIONS_PER_KEY_PER_MINUTE="100000",
    )
    origin = "http://bench.localhost"
    return configure_organization(organization, origin, detector), origin


def configure_organization(organization: Any, origin: str, detector: str = "webrtcvad") -> str:
    """The organization's assistants on simulated speech-to-text with the bench's turn settings, no plan
    (so no concurrent-session limit or cap), its widget key allowing ``origin``; returns that key."""
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
        )
    # No plan: no concurrent-session limit or cap (a new organization's trial allows 2 sessions at a time).
    Subscription.objects.filter(organization=organization).delete()
    key = WidgetKey.objects.get(organization=organization)
    key.allowed_origins = [origin]
    key.save()
    return key.key


async def run(args: argparse.Namespace, base_url: str, key: str, origin: str, daphne_pid: int) -> dict:
    from tests.voice.client import read_wav

    wavs = {name: read_wav(name) for name in (*QUESTIONS, "interrupt.wav")}
    results = Results()
    async with ServerUsage(daphne_pid) as usage:
        await asyncio.gather(
            *(
                run_session(args.ramp, i, base_url, key, origin, args.seconds, results, wavs, args.frame_ms)
                for i in range(args.sessions)
            )
        )
    return {
        "sessions": args.sessions,
        "detector": args.detector,
        "seconds": args.seconds,
        "ramp_s": args.ramp,
        "frame_ms": args.frame_ms,
        "turns": results.turns,
        "endpoint_delay_ms": summary(results.endpoint),
        "overhead_ms": summary(results.overhead),
        "bargein_ms": summary(results.bargein),
        "stale_audio_chunks": results.stale,
        **usage.figures(args.sessions),
        "client_send_lag_ms": summary(results.client_lag_ms),
        "overhead_by_stage_ms": {stage: summary(values) for stage, values in results.stages.items()},
        "errors": len(results.errors),
        "error_samples": results.errors[:5],
        "configured_silence_ms": END_SILENCE_MS,
        "barge_in_min_ms": BARGE_IN_MIN_MS,
        "simulated_latency": LATENCY,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the sessions arrive")
    parser.add_argument("--frame-ms", type=int, default=40, help="audio per message the clients send (the widget: 40)")
    parser.add_argument("--detector", choices=["webrtcvad", "silero"], default="webrtcvad", help="speech detector")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--channel", choices=("widget", "phone"), default="widget", help="phone: bench.phone (sessions are calls)"
    )
    args = parser.parse_args()
    if args.channel == "phone":  # bench.phone builds on this module: it runs in its own process, not imported here
        phone = ["--calls", str(args.sessions), "--seconds", str(args.seconds), "--ramp", str(args.ramp)]
        os.execv(sys.executable, [sys.executable, "-m", "bench.phone", *phone, *(["--json"] if args.json else [])])
    key, origin = prepare(args.detector)
    env = simulated_latency_env(LATENCY)
    if os.environ.get("BENCH_ASYNCIO_DEBUG"):
        env["PYTHONASYNCIODEBUG"] = "1"
    with pinned_daphne(ROOT / ".data" / "bench-voice", env) as (base_url, daphne_pid):
        result = asyncio.run(run(args, base_url, key, origin, daphne_pid))
    print_voice_figures(result)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
