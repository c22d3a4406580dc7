"""Concurrent phone calls against one daphne process: Twilio Media Streams with simulated providers.

    .venv/bin/python -m bench.phone --calls 200 --seconds 60 --json
    .venv/bin/python -m bench.phone --calls 200 --seconds 60 --runs 3 --json
    .venv/bin/python -m bench.voice --channel phone --sessions 200 --seconds 60 --json   # the same

Each call is the fake Twilio of the tests (tests/fakes/twilio.py): the voice webhook signed like Twilio,
then a media stream that sends the speech fixtures as 8 kHz µ-law in 20 ms messages in real time, plays
what comes back in real time and echoes its marks; every second reply is interrupted by speaking over
it. Between the caller's words the line sends silence, a message every 20 ms for the whole call, as
Twilio does (``--line continuous``, the default; ``--line speech`` sends the words only, as this bench
did before 2026-12-07: about a third of the messages). daphne is pinned to one core, the callers,
PostgreSQL and Redis run on the other(s) (bench.common.pinned_daphne). Prints what it ran on, the widget
benchmark's figures (bench.voice) plus mu_law_us_per_frame, and with --json one JSON object; ``--runs N``
as in bench.voice.

endpoint_delay_ms: the server's own figure for each caller turn (Turn.endpoint_delay_ms: arrival of the
    last voiced frame → end of turn detected); the phone protocol has no speech.stopped to time.
voice_to_voice_ms: end of the caller's last word (where the fixture's energy ends, at the time the
    caller "spoke" that sample) → the first ``media`` message of the reply to it (the media just before
    the first mark the server names ``r<reply>:…``). Counted as in bench.voice: each question, including
    one whose reply the caller later interrupts (its first audio had arrived), and the interrupting
    speech, a question with its own reply; not the barge-in itself.
overhead_ms: turn detected → first reply audio sent (the stored turns' first_audio_ms) minus the simulated
    providers' configured latencies, as in bench.voice (bench.common.reply_timing). The phone protocol
    carries no metrics: a reply is known to be preemptive only if the server stores ``preemptive`` and
    ``ready_before_turn_end_ms`` (and ``started_before_turn_end_ms``) in the assistant turn's ``route``.
release_ms: a preemptive reply whose audio was ready before the turn ended: its first_audio_ms.
bargein_ms: first frame of interrupting speech sent → ``clear`` received, minus the barge-in minimum.
wasted_llm_tokens_pct: as in bench.voice: dropped preemptive replies' chat-model tokens over all of the run's.
stale_audio_chunks: media of a reply received after its ``clear`` (must be 0).
mu_law_us_per_frame: µ-law encode + decode of one 20 ms frame (160 samples), in this process.
overhead_by_window_ms: overhead_ms in 10 s windows of the run, by when the caller's turn began (n, p50,
    p95): the calls ring over the ramp, and the turns of 200 calls bunch up (every second turn is
    interrupted, and the interruption is a turn of its own), so the tail is not spread evenly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import timeit
from collections.abc import Iterable
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
from bench.voice import (
    BARGE_IN_MIN_MS,
    END_SILENCE_MS,
    LATENCY,
    QUESTIONS,
    STT_LATENCIES,
    reply_provider_ms,
    speech_bounds_ms,
)
from bench.voice import Results as VoiceResults

ROOT = Path(__file__).resolve().parent.parent
NUMBER = "+14155550100"
AUTH_TOKEN = "bench-platform-twilio-token"
ACCOUNT_SID = "AC" + "b" * 32
PHONE_RATE = 8000


@dataclass
class Results(VoiceResults):
    webhook_ms: list[float] = field(default_factory=list)  # ringing → TwiML received (the voice webhook)
    # (when the answered turn began, wall-clock seconds; the reply's overhead in ms): where in the run the tail falls
    overhead_at: list[tuple[float, float]] = field(default_factory=list)


WINDOW_S = 10.0


def overhead_by_window(overhead_at: list[tuple[float, float]], started: float) -> list[dict[str, float | int]]:
    """The replies' overhead in consecutive WINDOW_S windows of the run (by when the caller's turn began,
    from ``started``): the ramp's call set-ups, the clustered turns and the quiet stretches apart."""
    windows: dict[int, list[float]] = {}
    for at, overhead in overhead_at:
        windows.setdefault(int(max(0.0, at - started) // WINDOW_S), []).append(overhead)
    figures = {index: summary(values) for index, values in sorted(windows.items())}
    return [
        {"from_s": index * WINDOW_S, "n": found["n"], "p50": found["p50"], "p95": found["p95"]}
        for index, found in figures.items()
    ]


def first_media_by_reply(received: Iterable[tuple[float, dict]]) -> dict[int, float]:
    """When the first ``media`` message of each reply arrived, in one pass over what the call received: the
    server follows each chunk of media with a mark naming its reply (``r<reply>:<ms>``), so a reply's first
    media is the first media after the previous mark (or ``clear``) that its own first mark follows."""
    first: dict[int, float] = {}
    chunk_at: float | None = None
    for at, message in received:
        kind = message.get("event")
        if kind == "media":
            if chunk_at is None:
                chunk_at = at
        elif kind == "mark":
            reply = int(message["mark"]["name"].partition(":")[0][1:])
            if chunk_at is not None:
                first.setdefault(reply, chunk_at)
            chunk_at = None
        elif kind == "clear":
            chunk_at = None  # media before a clear that no mark followed belongs to the cleared reply
    return first


def mu_law_us_per_frame() -> float:
    """Encode and decode of one 20 ms phone frame through the lookup tables."""
    import numpy as np

    from voice.audio.mulaw import pcm_to_ulaw, ulaw_to_pcm

    frame = (np.sin(np.arange(160) / 3) * 8000).astype("<i2").tobytes()
    runs = 20_000
    seconds = timeit.timeit(lambda: ulaw_to_pcm(pcm_to_ulaw(frame)), number=runs)
    return round(seconds / runs * 1e6, 2)


def prepare(*, preemptive: bool = True) -> None:
    organization = fresh_platform("phone")
    from django_tenants.utils import tenant_context

    from billing.models import Subscription
    from telephony.models import PhoneNumber
    from voice.models import Assistant

    with tenant_context(organization):
        Assistant.objects.update(
            stt_provider="simulated",
            barge_in_min_ms=BARGE_IN_MIN_MS,
            end_silence_ms=END_SILENCE_MS,
            preemptive_replies=preemptive,
        )
        assistant_id = Assistant.objects.order_by("pk").values_list("pk", flat=True).first()
    # No plan: no concurrent-session limit or cap.
    Subscription.objects.filter(organization=organization).delete()
    PhoneNumber.objects.create(organization=organization, number=NUMBER, assistant_id=assistant_id)


def turn_mark() -> int:
    """The bench organization's newest stored turn now: a run's turns are the ones after it."""
    from django.db.models import Max
    from django_tenants.utils import tenant_context

    from conversations.models import Turn
    from tenants.models import Organization

    with tenant_context(Organization.objects.get(slug="bench")):
        return Turn.objects.aggregate(last=Max("pk"))["last"] or 0


def stored_figures(results: Results, after: int) -> None:
    """The server's per-turn figures, from the turns it stored after ``after`` (the phone protocol carries no
    metrics): each caller turn's endpoint delay, and each reply's overhead or release time, with the
    speech-to-text time of the caller turn it answered."""
    from django_tenants.utils import tenant_context

    from conversations.models import Turn
    from tenants.models import Organization

    with tenant_context(Organization.objects.get(slug="bench")):
        turns = (
            Turn.objects.filter(conversation__channel="phone", pk__gt=after)
            .order_by("conversation_id", "index")
            .values_list(
                "conversation_id",
                "role",
                "text",
                "first_audio_ms",
                "endpoint_delay_ms",
                "stt_ms",
                "llm_first_token_ms",
                "tts_first_byte_ms",
                "route",
                "started_at",
            )
        )
        conversation, stt_ms, asked_at = None, None, None
        for conversation_id, role, text, first_audio_ms, endpoint_ms, turn_stt_ms, llm_ms, tts_ms, route, at in turns:
            if conversation_id != conversation:
                conversation, stt_ms, asked_at = conversation_id, None, None
            if role == "visitor":
                stt_ms, asked_at = turn_stt_ms, at
                if endpoint_ms is not None:
                    results.samples.values["endpoint_delay_ms"].append(endpoint_ms)
            # Replies the model wrote; a greeting (no model call) is not a reply to a turn.
            elif role == "assistant" and first_audio_ms is not None and llm_ms is not None and text:
                given = route if isinstance(route, dict) else {}
                metrics = {
                    "first_audio_ms": first_audio_ms,
                    "stt_ms": stt_ms,
                    "tts_first_byte_ms": tts_ms,
                    **{key: given[key] for key in PREEMPTIVE_ROUTE_KEYS if key in given},
                }
                timing = reply_timing(metrics, reply_provider_ms=reply_provider_ms(text), stt_latencies=STT_LATENCIES)
                if timing is not None:
                    results.samples.values[f"{timing[0]}_ms"].append(timing[1])
                    if timing[0] == "overhead" and asked_at is not None:
                        results.overhead_at.append((asked_at.timestamp(), timing[1]))


# Where a stored reply says it was preemptive (the phone protocol has no response.done metrics).
PREEMPTIVE_ROUTE_KEYS = ("preemptive", "ready_before_turn_end_ms", "started_before_turn_end_ms")


async def run_call(
    ramp_s: float,
    index: int,
    base_url: str,
    seconds: float,
    results: Results,
    speech: dict[str, bytes],
    bounds: dict[str, tuple[float, float]],
    *,
    continuous: bool = True,
) -> None:
    """One call: ``bounds`` are where the words start and end in each fixture (ms); ``continuous``: the
    line sends silence between the caller's words, as Twilio does (bench.common.AudioLine)."""
    from tests.fakes.twilio import FRAME_BYTES, ULAW_SILENCE, FakeTwilioCall, ring, stream_of, ulaw_silence

    await asyncio.sleep(random.random() * ramp_s)  # callers ring over the ramp, not all in one instant
    rang = time.monotonic()
    try:
        status, twiml, call_sid = await asyncio.to_thread(
            ring,
            base_url,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            to=NUMBER,
            caller=f"+1500555{index:04d}",
            timeout_s=30,
        )
    except OSError as exc:
        results.errors.append(f"call {index}: voice webhook: {type(exc).__name__}: {exc}")
        return
    results.webhook_ms.append((time.monotonic() - rang) * 1000)
    stream = stream_of(twiml) if status == 200 else None
    if stream is None:
        results.errors.append(f"call {index}: {status} {twiml[:200]}")
        return
    call = await FakeTwilioCall.connect(stream, call_sid=call_sid)
    line = AudioLine(
        call.send_frame,
        frame_bytes=FRAME_BYTES,
        frame_s=FRAME_BYTES / PHONE_RATE,
        silence=ULAW_SILENCE,
        continuous=continuous,
    )
    asked: list[tuple[float, int, str]] = []  # (end of the caller's words, the reply to them, kind)
    try:
        await call.start(stream.parameters)
        line.start()
        await call.wait_until(lambda: call.audio.get(1), 30, "greeting")
        await call.wait_heard(1, 60)
        deadline = time.monotonic() + seconds
        reply_id, turn = 1, 0
        while time.monotonic() < deadline:
            turn += 1
            name = QUESTIONS[(index + turn) % len(QUESTIONS)]
            words = speech[name] + ulaw_silence(400)
            begun, said = line.say(words)
            started = await begun
            asked.append((started + bounds[name][1] / 1000, reply_id + 1, "question"))
            results.client_lag_ms.append(line.lateness_ms(words, started, await said))
            reply_id += 1
            expected = reply_id
            await call.wait_until(lambda e=expected: call.audio.get(e), 30, f"reply {expected}")
            if turn % 2 == 0:
                # Barge in while the reply plays: the interruption is a question that gets its own reply.
                await asyncio.sleep(random.random() * 1.5)
                interrupt = speech["interrupt.wav"]
                clears = len(call.clears)
                onset_ms, words_end_ms = bounds["interrupt.wav"]
                begun, speaking = line.say(interrupt)
                stream_started = await begun
                asked.append((stream_started + words_end_ms / 1000, reply_id + 1, "after_barge_in"))
                await call.wait_until(lambda c=clears: len(call.clears) > c, 10, "clear")
                results.samples.values["bargein_ms"].append(
                    (call.clears[clears][0] - (stream_started + onset_ms / 1000)) * 1000 - BARGE_IN_MIN_MS
                )
                await speaking
                results.turns += 1
                reply_id += 1
                expected = reply_id
                await call.wait_until(lambda e=expected: call.audio.get(e), 30, f"reply {expected}")
            await call.wait_heard(reply_id, 60)  # a polite caller lets the reply finish
            results.turns += 1
        await line.stop()
        await call.hang_up()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop on them
        results.errors.append(f"call {index}: {type(exc).__name__}: {exc}"[:300])
    finally:
        await line.stop()
        results.stale += call.stale_media
        if call.close_code is None:
            await call.ws.close()
        first_media = first_media_by_reply(call.received)
        for words_end, reply, kind in asked:
            results.voice_to_voice(words_end, first_media.get(reply), kind)


async def run(args: argparse.Namespace, base_url: str, daphne_pid: int) -> tuple[dict[str, Any], Samples]:
    """One run: the calls, then the figures (and the run's raw values, to combine runs)."""
    from tests.fakes.twilio import decode, phone_speech

    speech = {name: phone_speech(name) for name in (*QUESTIONS, "interrupt.wav")}
    bounds = {name: speech_bounds_ms(decode(ulaw).tobytes(), PHONE_RATE) for name, ulaw in speech.items()}
    results = Results()
    load = [round(x, 2) for x in os.getloadavg()]
    usage_before = await asyncio.to_thread(usage_mark)
    turns_before = await asyncio.to_thread(turn_mark)
    started = time.time()
    with callers_without_collections():
        async with ServerUsage(daphne_pid, steady=(args.ramp, args.seconds)) as usage:
            await asyncio.gather(
                *(
                    run_call(
                        args.ramp,
                        i,
                        base_url,
                        args.seconds,
                        results,
                        speech,
                        bounds,
                        continuous=args.line == "continuous",
                    )
                    for i in range(args.calls)
                )
            )
    await asyncio.sleep(2)  # the last turns and their usage are being stored
    await asyncio.to_thread(stored_figures, results, turns_before)
    wasted = await asyncio.to_thread(wasted_figures, "bench", usage_before)
    result = {
        "load_average_at_start": load,
        "turns": results.turns,
        **results.samples.summaries(),
        "voice_to_voice_by_kind_ms": {kind: summary(v) for kind, v in results.voice_to_voice_by_kind.items()},
        **wasted,
        "stale_audio_chunks": results.stale,
        **usage.figures(args.calls),
        "client_send_lag_ms": summary(results.client_lag_ms),
        "voice_webhook_ms": summary(results.webhook_ms),
        "overhead_by_window_ms": overhead_by_window(results.overhead_at, started),
        "mu_law_us_per_frame": mu_law_us_per_frame(),
        "errors": len(results.errors),
        "error_samples": results.errors[:5],
    }
    return result, results.samples


def benchmark(
    calls: int,
    seconds: float,
    ramp: float,
    *,
    runs: int = 1,
    as_json: bool,
    answer: str = "preemptive",
    stt: str = "streaming",
    line: str = "continuous",
) -> int:
    """Run ``runs`` times in a row (a fresh server each time, one platform) and print; ``bench.voice
    --channel phone`` comes here too."""
    settings = {
        "channel": "phone",
        "calls": calls,
        "seconds": seconds,
        "ramp_s": ramp,
        "frame_ms": 20,
        "barge_in_min_ms": BARGE_IN_MIN_MS,
        "answer": answer,
        "stt": stt,
        "line": line,
    }
    info = machine_info(LATENCY, END_SILENCE_MS, **settings)
    print_machine(info)
    prepare(preemptive=answer == "preemptive")
    env = {
        **simulated_latency_env(LATENCY),
        **stt_env(stt),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    args = argparse.Namespace(calls=calls, seconds=seconds, ramp=ramp, line=line)
    results: list[dict[str, Any]] = []
    samples: list[Samples] = []
    for number in range(1, runs + 1):
        with pinned_daphne(ROOT / ".data" / "bench-phone", env) as (base_url, daphne_pid):
            result, run_samples = uvloop.run(run(args, base_url, daphne_pid))
            result["pinning"] = observed_pinning(daphne_pid, ROOT / ".data" / "bench-phone")
        if runs > 1:
            print(f"{'run':>22}: {number} of {runs}, load average at start {result['load_average_at_start']}")
        print(f"{'pinning seen':>22}: {result['pinning']}")
        print_voice_figures(result)
        print(f"{'voice_webhook_ms':>22}: {result['voice_webhook_ms']}")
        windows = ", ".join(
            f"{w['from_s']:.0f}s: n {w['n']} p50 {w['p50']} p95 {w['p95']}" for w in result["overhead_by_window_ms"]
        )
        print(f"{'overhead by window':>22}: {windows}")
        print(f"{'mu_law_us_per_frame':>22}: {result['mu_law_us_per_frame']}")
        results.append(result)
        samples.append(run_samples)
    combined = combine_runs(results, samples)
    if runs > 1:
        print_runs(combined)
    if as_json:
        print(json.dumps(runs_json(settings, info, results, combined)))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the calls arrive")
    parser.add_argument("--runs", type=int, default=1, help="run the whole measurement this many times in a row")
    parser.add_argument("--answer", choices=ANSWERS, default="preemptive", help="when the reply starts")
    parser.add_argument("--stt", choices=STT_MODES, default="streaming", help="simulated speech-to-text")
    parser.add_argument(
        "--line",
        choices=LINES,
        default="continuous",
        help="continuous: a media message every 20 ms for the whole call, as Twilio sends; speech: the words only",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return benchmark(
        args.calls,
        args.seconds,
        args.ramp,
        runs=args.runs,
        as_json=args.json,
        answer=args.answer,
        stt=args.stt,
        line=args.line,
    )


if __name__ == "__main__":
    sys.exit(main())
