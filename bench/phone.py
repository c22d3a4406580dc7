"""Concurrent phone calls against one daphne process: Twilio Media Streams with simulated providers.

    .venv/bin/python -m bench.phone --calls 200 --seconds 60 --json
    .venv/bin/python -m bench.voice --channel phone --sessions 200 --seconds 60 --json   # the same

Each call is the fake Twilio of the tests (tests/fakes/twilio.py): the voice webhook signed like Twilio,
then a media stream that sends the speech fixtures as 8 kHz µ-law in 20 ms messages in real time, plays
what comes back in real time and echoes its marks; every second reply is interrupted by speaking over
it. daphne is pinned to one core, the callers run on the other (bench.common.pinned_daphne). Prints the
widget benchmark's figures (bench.voice) plus mu_law_us_per_frame, and with --json one JSON object.

endpoint_delay_ms: the server's own figure for each caller turn (Turn.endpoint_delay_ms: arrival of the
    last voiced frame → end of turn detected); the phone protocol has no speech.stopped to time.
overhead_ms: turn detected → first reply audio sent (the stored turns' first_audio_ms) minus the simulated
    providers' configured latencies, as in bench.voice.
bargein_ms: first frame of interrupting speech sent → ``clear`` received, minus the barge-in minimum.
stale_audio_chunks: media of a reply received after its ``clear`` (must be 0).
mu_law_us_per_frame: µ-law encode + decode of one 20 ms frame (160 samples), in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import timeit
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    ServerUsage,
    fresh_platform,
    pinned_daphne,
    print_voice_figures,
    simulated_latency_env,
    summary,
)
from bench.voice import BARGE_IN_MIN_MS, END_SILENCE_MS, LATENCY, QUESTIONS, provider_ms, speech_bounds_ms
from bench.voice import Results as VoiceResults

ROOT = Path(__file__).resolve().parent.parent
NUMBER = "+14155550100"
AUTH_TOKEN = "bench-platform-twilio-token"
ACCOUNT_SID = "AC" + "b" * 32
PHONE_RATE = 8000


@dataclass
class Results(VoiceResults):
    webhook_ms: list[float] = field(default_factory=list)  # ringing → TwiML received (the voice webhook)


def mu_law_us_per_frame() -> float:
    """Encode and decode of one 20 ms phone frame through the lookup tables."""
    import numpy as np

    from voice.audio.mulaw import pcm_to_ulaw, ulaw_to_pcm

    frame = (np.sin(np.arange(160) / 3) * 8000).astype("<i2").tobytes()
    runs = 20_000
    seconds = timeit.timeit(lambda: ulaw_to_pcm(pcm_to_ulaw(frame)), number=runs)
    return round(seconds / runs * 1e6, 2)


def prepare() -> None:
    organization = fresh_platform("phone")
    from django_tenants.utils import tenant_context

    from billing.models import Subscription
    from telephony.models import PhoneNumber
    from voice.models import Assistant

    with tenant_context(organization):
        Assistant.objects.update(
            stt_provider="simulated", barge_in_min_ms=BARGE_IN_MIN_MS, end_silence_ms=END_SILENCE_MS
        )
        assistant_id = Assistant.objects.order_by("pk").values_list("pk", flat=True).first()
    # No plan: no concurrent-session limit or cap.
    Subscription.objects.filter(organization=organization).delete()
    PhoneNumber.objects.create(organization=organization, number=NUMBER, assistant_id=assistant_id)


def stored_figures(results: Results) -> None:
    """The server's per-turn figures, from the turns it stored (the phone protocol carries no metrics)."""
    from django_tenants.utils import tenant_context

    from conversations.models import Turn
    from tenants.models import Organization

    with tenant_context(Organization.objects.get(slug="bench")):
        turns = Turn.objects.filter(conversation__channel="phone").values_list(
            "role", "text", "first_audio_ms", "endpoint_delay_ms", "llm_first_token_ms"
        )
        for role, text, first_audio_ms, endpoint_ms, llm_first_token_ms in turns:
            if role == "visitor" and endpoint_ms is not None:
                results.endpoint.append(endpoint_ms)
            # Replies the model wrote; a greeting (no model call) is not a reply to a turn.
            elif role == "assistant" and first_audio_ms is not None and llm_first_token_ms is not None and text:
                results.overhead.append(first_audio_ms - provider_ms(text))


async def run_call(
    ramp_s: float,
    index: int,
    base_url: str,
    seconds: float,
    results: Results,
    speech: dict[str, bytes],
    interrupt_onset_ms: float,
) -> None:
    from tests.fakes.twilio import FakeTwilioCall, ring, stream_of, ulaw_silence

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
    try:
        await call.start(stream.parameters)
        await call.wait_until(lambda: call.audio.get(1), 30, "greeting")
        await call.wait_heard(1, 60)
        deadline = time.monotonic() + seconds
        reply_id, turn = 1, 0
        while time.monotonic() < deadline:
            turn += 1
            name = QUESTIONS[(index + turn) % len(QUESTIONS)]
            started = time.monotonic()
            await call.speak(speech[name] + ulaw_silence(400))
            audio_s = (len(speech[name]) + PHONE_RATE * 0.4) / PHONE_RATE
            results.client_lag_ms.append((time.monotonic() - started - audio_s) * 1000)
            reply_id += 1
            expected = reply_id
            await call.wait_until(lambda e=expected: call.audio.get(e), 30, f"reply {expected}")
            if turn % 2 == 0:
                # Barge in while the reply plays: the interruption is a question that gets its own reply.
                await asyncio.sleep(random.random() * 1.5)
                interrupt = speech["interrupt.wav"]
                clears = len(call.clears)
                stream_started = time.monotonic()
                speaking = asyncio.create_task(call.speak(interrupt))
                await call.wait_until(lambda c=clears: len(call.clears) > c, 10, "clear")
                results.bargein.append(
                    (call.clears[clears][0] - (stream_started + interrupt_onset_ms / 1000)) * 1000 - BARGE_IN_MIN_MS
                )
                await speaking
                results.turns += 1
                reply_id += 1
                expected = reply_id
                await call.wait_until(lambda e=expected: call.audio.get(e), 30, f"reply {expected}")
            await call.wait_heard(reply_id, 60)  # a polite caller lets the reply finish
            results.turns += 1
        await call.hang_up()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop on them
        results.errors.append(f"call {index}: {type(exc).__name__}: {exc}"[:300])
    finally:
        results.stale += call.stale_media
        if call.close_code is None:
            await call.ws.close()


async def run(args: argparse.Namespace, base_url: str, daphne_pid: int) -> dict:
    from tests.fakes.twilio import decode, phone_speech

    speech = {name: phone_speech(name) for name in (*QUESTIONS, "interrupt.wav")}
    onset_ms, _ = speech_bounds_ms(decode(speech["interrupt.wav"]).tobytes(), PHONE_RATE)
    results = Results()
    async with ServerUsage(daphne_pid) as usage:
        await asyncio.gather(
            *(run_call(args.ramp, i, base_url, args.seconds, results, speech, onset_ms) for i in range(args.calls))
        )
    await asyncio.sleep(2)  # the last turns are being stored
    await asyncio.to_thread(stored_figures, results)
    return {
        "channel": "phone",
        "calls": args.calls,
        "seconds": args.seconds,
        "ramp_s": args.ramp,
        "frame_ms": 20,
        "turns": results.turns,
        "endpoint_delay_ms": summary(results.endpoint),
        "overhead_ms": summary(results.overhead),
        "bargein_ms": summary(results.bargein),
        "stale_audio_chunks": results.stale,
        **usage.figures(args.calls),
        "client_send_lag_ms": summary(results.client_lag_ms),
        "voice_webhook_ms": summary(results.webhook_ms),
        "mu_law_us_per_frame": mu_law_us_per_frame(),
        "errors": len(results.errors),
        "error_samples": results.errors[:5],
        "configured_silence_ms": END_SILENCE_MS,
        "barge_in_min_ms": BARGE_IN_MIN_MS,
        "simulated_latency": LATENCY,
    }


def benchmark(calls: int, seconds: float, ramp: float, *, as_json: bool) -> int:
    """Run and print; ``bench.voice --channel phone`` comes here too."""
    prepare()
    env = {**simulated_latency_env(LATENCY), "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    args = argparse.Namespace(calls=calls, seconds=seconds, ramp=ramp)
    with pinned_daphne(ROOT / ".data" / "bench-phone", env) as (base_url, daphne_pid):
        result = asyncio.run(run(args, base_url, daphne_pid))
    print_voice_figures(result)
    print(f"{'voice_webhook_ms':>22}: {result['voice_webhook_ms']}")
    print(f"{'mu_law_us_per_frame':>22}: {result['mu_law_us_per_frame']}")
    if as_json:
        print(json.dumps(result))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the calls arrive")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    return benchmark(args.calls, args.seconds, args.ramp, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
