"""bench/soak.py's figures from a recorded run: status classes, fault windows, close codes, usage, JSON shape.

The bench itself runs for minutes against real servers (docs/benchmarks.md); here its arithmetic, fast."""

from __future__ import annotations

import json
from collections import Counter

from bench.soak import (
    FAULTS,
    Answer,
    Fault,
    Run,
    compare_usage,
    documented_close_codes,
    figures,
    parse_args,
    status_class,
)


def test_defaults_are_the_documented_command():
    args = parse_args(["--minutes", "1", "--no-faults", "--json"])
    assert (args.minutes, args.no_faults, args.json) == (1.0, True, True)
    defaults = parse_args([])
    assert (defaults.minutes, defaults.voice_sessions, defaults.no_faults) == (5.0, 50, False)
    assert FAULTS == ("redis_restart", "postgres_terminate", "postgres_restart", "worker_kill")


def test_close_codes_come_from_the_protocol_document():
    codes = documented_close_codes()
    assert {1000, 1006, 4011, 4012, 4008, 4029} <= codes
    assert 1011 not in codes  # named in the prose only: daphne cannot send it


def test_status_classes():
    assert [status_class(s) for s in (200, 302, 429, 503, None)] == ["2xx", "3xx", "4xx", "5xx", "no_answer"]


def test_a_5xx_counts_against_the_server_only_outside_every_fault_window():
    run = Run(started=100.0)
    # Redis restarted at 110 s, ready again at 111.5 s: the window lasts until 113.5 s with a 2 s grace.
    run.faults.append(Fault("redis_restart", at=110.0, injected=True, ready_at=111.5, unready_polls=12))
    # PostgreSQL never came back: its window is capped.
    run.faults.append(Fault("postgres_restart", at=200.0, injected=True))
    # A fault that could not be injected excuses nothing, nor one injected into a server already failing.
    run.faults.append(Fault("worker_kill", at=300.0, ready_at=300.2, detail="injection failed: …"))
    run.faults.append(Fault("postgres_terminate", at=400.0, injected=True, ready_before=False, ready_at=410.0))
    run.answers += [
        Answer("api_read", 105.0, 105.1, 200),
        Answer("api_read", 109.9, 110.2, 500),  # started before the fault, answered during it: inside
        Answer("api_read", 113.0, 113.2, 503),  # in the grace: inside
        Answer("api_read", 114.0, 114.1, 500),  # after the grace: outside
        Answer("widget_token", 120.0, 140.0, None),  # no answer, outside: counts
        Answer("anonymous", 121.0, 121.01, 401),
        Answer("api_read", 250.0, 250.1, 500),  # inside the capped window of the unrecovered fault
        Answer("admin_page", 300.1, 300.3, 502),  # during the fault that failed: outside
        Answer("admin_page", 401.0, 401.3, 500),  # after a fault hit a server already not ready: outside
    ]
    run.voice_reply_ms += [400.0, 420.0]
    run.voice.update({"connections": 5, "continued": 2, "ended:4012": 1, "ended:1006": 1, "failed:no_reply": 1})
    run.note_connections({"postgres_web": 3, "redis_web": 2})
    run.note_connections({"postgres_web": 5, "redis_web": 1})
    usage = compare_usage({"c1": Counter(session=1)}, {"c1": Counter(session=1)})

    result = json.loads(json.dumps(figures(run, 2.0, usage)))

    assert result["requests"]["api_read"] == {"2xx": 1, "5xx": 4}
    assert result["requests"]["widget_token"] == {"no_answer": 1}
    assert result["http_5xx_outside_fault_windows"] == 4
    assert result["http_5xx_outside_fault_windows_by_kind"] == {"api_read": 1, "widget_token": 1, "admin_page": 2}
    redis, postgres, worker, terminate = result["faults"]
    assert redis["ready_after_s"] == 1.5 and redis["window_s"] == [10.0, 13.5] and redis["http_5xx_in_window"] == 2
    assert postgres["ready_after_s"] is None and postgres["window_s"] == [100.0, 162.0]
    assert worker["window_s"] == [200.0, 200.0] and worker["http_5xx_in_window"] == 0
    assert terminate["ready_before"] is False and terminate["window_s"] == [300.0, 300.0]
    assert set(result["latency_ms"]["api_read"]) == {"p50", "p95", "p99", "max", "n"}
    assert result["latency_ms"]["voice_reply"]["n"] == 2
    assert result["max_connections"] == {"postgres_web": 5, "redis_web": 2}
    assert result["connections_at_end"] == {"postgres_web": 5, "redis_web": 1}
    assert result["voice_sessions"] == {"continued": 2, "ended_with_documented_code": 2, "failed": 1}
    assert result["usage"]["missing"] == 0


def test_usage_missing_and_extra_are_per_conversation_and_metric():
    expected = {
        "a": Counter(session=1, llm_input_tokens=2, llm_output_tokens=2),
        "b": Counter(session=1, audio_in_seconds=1),
    }
    # One of a's replies was lost; b's exchange was stored twice under other keys; c was never seen by a client.
    stored = {
        "a": Counter(session=1, llm_input_tokens=1, llm_output_tokens=1),
        "b": Counter(session=1, audio_in_seconds=2),
        "c": Counter(session=1),
    }

    usage = compare_usage(expected, stored)

    assert (usage["expected"], usage["stored"]) == (7, 7)
    assert usage["missing"] == 2 and usage["missing_by_metric"] == {"llm_input_tokens": 1, "llm_output_tokens": 1}
    assert usage["extra"] == 2 and usage["extra_by_metric"] == {"audio_in_seconds": 1, "session": 1}
