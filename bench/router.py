"""The router's two costs: how much a hanging provider adds to a turn, and how long a decision takes.

    .venv/bin/python -m bench.router --json

failover_extra_ms: time to first token through the router when the primary model never answers
    (a fake OpenAI server that accepts the request and sends nothing), minus the secondary's own time
    to first token measured directly. Goal: at most the attempt bound + 20 ms.
failover_extra_open_ms: the same once the primary's breaker is open (the router skips it). Goal: ~0.
route_decision_us: one routing decision (request estimate + plan) over five candidates with a
    ten-message history, per policy. Goal: p95 ≤ 200 µs.

The fake OpenAI server (tests/fakes/openai_server.py) runs as its own process and is reached through
the real openai SDK; breaker state goes through the embedded Redis, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.common import summary

ROOT = Path(__file__).resolve().parent.parent


def start_fake_openai() -> tuple[subprocess.Popen[bytes], str]:
    from aura.embedded_services import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/requests", timeout=1):
                return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the fake OpenAI server did not start")


async def first_token_ms(chat: object, messages: list[object]) -> float:
    from voice.providers.base import TextDelta

    started = time.perf_counter()
    stream = chat.stream(messages)  # type: ignore[attr-defined]
    try:
        async for event in stream:
            if isinstance(event, TextDelta):
                return (time.perf_counter() - started) * 1000
    finally:
        await stream.aclose()
    raise RuntimeError("no text came back")


async def measure_failover(base_url: str, bound_ms: float, runs: int) -> dict[str, object]:
    from voice.providers.base import ChatMessage
    from voice.providers.openai_api import OpenAIChat, openai_client
    from voice.router.candidates import Candidate
    from voice.router.health import ProviderHealth
    from voice.router.routed import RoutedChat

    client = openai_client(api_key="sk-bench-0000", base_url=base_url)
    primary, secondary = Candidate("openai", "fake-hang"), Candidate("openai", "gpt-4o-mini")
    models = [
        (primary, OpenAIChat(client, model=primary.model)),
        (secondary, OpenAIChat(client, model=secondary.model)),
    ]
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "Are you open on Sunday?")]

    for _ in range(5):  # warm the connection pool and the fake
        await first_token_ms(models[1][1], messages)
    direct, routed, routed_open = [], [], []
    for _ in range(runs):
        direct.append(await first_token_ms(models[1][1], messages))
        health = ProviderHealth(failures_to_open=3, cooldown_s=30)
        await health.reset(primary)
        chat = RoutedChat(models, policy="fallback", bound_s=bound_ms / 1000, health=health)
        routed.append(await first_token_ms(chat, messages))
    health = ProviderHealth(failures_to_open=1, cooldown_s=600)
    await health.record_failure(primary, "bench: opened on purpose")
    chat = RoutedChat(models, policy="fallback", bound_s=bound_ms / 1000, health=health)
    for _ in range(runs):
        routed_open.append(await first_token_ms(chat, messages))
    await health.reset(primary)
    secondary_ms = statistics.median(direct)
    return {
        "secondary_first_token_ms": summary(direct),
        "routed_first_token_ms": summary(routed),
        "failover_extra_ms": summary([value - secondary_ms for value in routed]),
        "failover_extra_open_ms": summary([value - secondary_ms for value in routed_open]),
    }


def measure_decisions(iterations: int) -> dict[str, dict[str, float]]:
    from voice.providers.base import ChatMessage, ToolSpec
    from voice.router.candidates import parse_candidates
    from voice.router.health import Health, ProviderHealth
    from voice.router.policies import RouteRequest, SmartRules, plan

    candidates = parse_candidates(
        ["openai:gpt-4o-mini", "openai:gpt-4o", "xai:grok-3-mini", "xai:grok-3", "openai_compatible:llama-3.1-8b"]
    )
    health = ProviderHealth(failures_to_open=3, cooldown_s=30)
    health.entries = {c.key: Health(first_token_ms=300.0 + 50 * i) for i, c in enumerate(candidates)}
    health.entries[candidates[3].key] = Health(state="open", failures=3, opened_until=time.time() + 3600)
    messages = [ChatMessage("system", "You are the assistant of a busy bistro. Be brief and friendly. " * 4)]
    for turn in range(10):
        role = "user" if turn % 2 == 0 else "assistant"
        messages.append(ChatMessage(role, "Could you tell me whether you are open on Sunday evening? " * 2))
    tools = [ToolSpec(name=f"tool_{i}", description="") for i in range(2)]
    smart = SmartRules(strong=candidates[1], long_words=25, many_tools=3)
    results = {}
    for policy in ("fixed", "fallback", "cheapest", "fastest", "smart"):
        timings = []
        for _ in range(iterations):
            started = time.perf_counter_ns()
            plan(policy, candidates, RouteRequest.of(messages, tools), health, smart=smart)
            timings.append((time.perf_counter_ns() - started) / 1000)
        results[policy] = summary(timings, digits=2)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bound-ms", type=float, default=300.0, help="the attempt's time-to-first-token bound")
    parser.add_argument("--runs", type=int, default=40, help="failover runs")
    parser.add_argument("--decisions", type=int, default=20000, help="routing decisions timed per policy")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from aura.embedded_services import ensure_services

    data_dir = ROOT / ".data" / "bench-router"
    os.environ.setdefault("AURA_ENV", "development")
    os.environ.setdefault("AURA_DATA_DIR", str(data_dir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.base")
    ensure_services(data_dir, durable=False)
    import django

    django.setup()

    fake, base_url = start_fake_openai()
    try:
        failover = asyncio.run(measure_failover(base_url, args.bound_ms, args.runs))
    finally:
        fake.terminate()
        fake.wait(10)
    decisions = measure_decisions(args.decisions)
    decision_p95 = max(result["p95"] for result in decisions.values())

    print(f"attempt bound: {args.bound_ms:.0f} ms")
    for name in ("secondary_first_token_ms", "routed_first_token_ms", "failover_extra_ms", "failover_extra_open_ms"):
        figures = failover[name]
        print(f"{name:28s} p50 {figures['p50']:8.1f}  p95 {figures['p95']:8.1f}  max {figures['max']:8.1f}")
    for policy, figures in decisions.items():
        print(f"route decision ({policy:8s}) µs   p50 {figures['p50']:7.2f}  p95 {figures['p95']:7.2f}")
    extra_ok = failover["failover_extra_ms"]["p95"] <= args.bound_ms + 20
    print(
        f"goals: failover extra p95 ≤ bound + 20 ms: {'met' if extra_ok else 'MISSED'}; "
        f"decision p95 ≤ 200 µs: {'met' if decision_p95 <= 200 else 'MISSED'}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "attempt_bound_ms": args.bound_ms,
                    "failover_extra_ms": failover["failover_extra_ms"],
                    "failover_extra_open_ms": failover["failover_extra_open_ms"],
                    "secondary_first_token_ms": failover["secondary_first_token_ms"],
                    "route_decision_us": {"p95": decision_p95, "by_policy": decisions},
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
