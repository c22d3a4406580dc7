"""bench.voice's and bench.phone's arithmetic, fast: how a reply's timing counts, the wasted tokens, the
first audio of a phone reply, several runs combined, and what a run ran on.

The benches themselves stream audio in real time against a real server for minutes (docs/benchmarks.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bench.common import (
    Samples,
    combine_runs,
    core_plan,
    cpu_model,
    expected_stt_ms,
    machine_info,
    reply_timing,
    runs_json,
    servers_sharing,
    summary,
    usage_mark,
    wasted_figures,
    wasted_pct,
)
from bench.phone import first_media_by_reply, overhead_by_window
from bench.voice import LATENCY, STT_LATENCIES, Results, reply_provider_ms, stage_excess

STT = (60.0, 150.0)  # streaming commit, batch request


# -- how a reply counts ------------------------------------------------------------------------------------


def test_the_stt_latency_a_reply_waited_for_is_the_largest_configured_one_not_above_the_measured():
    assert expected_stt_ms(150.4, STT) == 150.0  # a batch request, 0.4 ms of the server's own
    assert expected_stt_ms(149.8, STT) == 150.0  # measured a little under the provider's own timer
    assert expected_stt_ms(175.0, STT) == 150.0
    assert expected_stt_ms(63.0, STT) == 60.0  # a streaming commit
    assert expected_stt_ms(2.0, STT) == 0.0  # the speculative transcript was already there
    assert expected_stt_ms(None, STT) == 0.0


def test_an_ordinary_reply_counts_its_time_beyond_the_providers_as_overhead():
    metrics = {"first_audio_ms": 758.0, "stt_ms": 151.0}
    assert reply_timing(metrics, reply_provider_ms=603.0, stt_latencies=STT) == ("overhead", 5.0)
    streamed = {"first_audio_ms": 668.0, "stt_ms": 62.0}
    assert reply_timing(streamed, reply_provider_ms=603.0, stt_latencies=STT) == ("overhead", 5.0)
    no_audio = {"first_audio_ms": None, "stt_ms": 151.0}
    assert reply_timing(no_audio, reply_provider_ms=603.0, stt_latencies=STT) is None


def test_a_preemptive_reply_ready_before_the_turn_ended_counts_its_release_not_overhead():
    metrics = {"first_audio_ms": 4.5, "stt_ms": 0.0, "preemptive": True, "ready_before_turn_end_ms": 120.0}
    assert reply_timing(metrics, reply_provider_ms=603.0, stt_latencies=STT) == ("release", 4.5)


def test_a_preemptive_reply_not_ready_at_the_turn_end_counts_overhead_from_its_own_start():
    started = {
        "first_audio_ms": 200.0,
        "preemptive": True,
        "ready_before_turn_end_ms": 0,
        "started_before_turn_end_ms": 410.0,
    }
    assert reply_timing(started, reply_provider_ms=603.0, stt_latencies=STT) == ("overhead", 7.0)
    # Without its start, the excess of its own provider stages: first piece of text + text-to-speech first byte.
    stages = {
        "first_audio_ms": 200.0,
        "preemptive": True,
        "ready_before_turn_end_ms": 0,
        "llm_first_sentence_ms": 486.0,
        "tts_first_byte_ms": 121.0,
    }
    assert reply_timing(stages, reply_provider_ms=603.0, stt_latencies=STT) == ("overhead", 4.0)
    unknown = {"first_audio_ms": 200.0, "preemptive": True, "ready_before_turn_end_ms": 0}
    assert reply_timing(unknown, reply_provider_ms=603.0, stt_latencies=STT) is None


def test_the_bench_subtracts_the_configured_latencies_of_the_reply_it_measures():
    assert (LATENCY["stt_stream_ms"], LATENCY["stt_ms"]) == STT_LATENCIES
    text = "we open at nine"  # no break: the first piece is all of it (where pieces break is sentences.py's)
    words = len(text.split())
    expected = LATENCY["llm_first_token_ms"] + (words - 1) / LATENCY["llm_tokens_per_s"] * 1000
    assert reply_provider_ms(text) == pytest.approx(expected + LATENCY["tts_first_byte_ms"])
    metrics = {
        "stt_ms": 61.0,
        "llm_first_token_ms": 301.0,
        "llm_first_sentence_ms": expected + 1.0,
        "tts_first_byte_ms": 121.0,
        "first_audio_ms": 61.0 + expected + 1.0 + 121.0 + 2.0,
    }
    excess = stage_excess(metrics, text)
    assert excess == pytest.approx(
        {"stt": 1.0, "llm_first_token": 1.0, "llm_first_sentence": 0.0, "tts_first_byte": 1.0, "between_stages": 2.0}
    )


def test_voice_to_voice_counts_replies_that_sent_audio_by_kind():
    results = Results()
    results.voice_to_voice(words_end=10.0, first_audio=11.25, kind="question")
    results.voice_to_voice(words_end=20.0, first_audio=21.5, kind="after_barge_in")
    results.voice_to_voice(words_end=30.0, first_audio=None, kind="question")  # a reply without audio
    assert results.samples.values["voice_to_voice_ms"] == [1250.0, 1500.0]
    assert results.voice_to_voice_by_kind == {"question": [1250.0], "after_barge_in": [1500.0]}


# -- the first audio of a phone reply ------------------------------------------------------------------------


def _media() -> dict:
    return {"event": "media", "media": {"payload": ""}}


def _mark(name: str) -> dict:
    return {"event": "mark", "mark": {"name": name}}


def test_the_first_media_of_a_phone_reply_is_the_one_its_first_mark_follows():
    received = [
        (1.0, _media()),
        (1.01, _mark("r1:0")),  # the greeting
        (1.02, _media()),
        (1.03, _mark("r1:200")),
        (5.0, _media()),  # reply 2's first chunk
        (5.01, _mark("r2:0")),
        (5.2, _media()),
        (5.21, _mark("r2:200")),
        (6.0, {"event": "clear"}),
        (6.5, _media()),  # cut before its mark: not reply 3's
        (6.6, {"event": "clear"}),
        (7.0, _media()),
        (7.01, _media()),
        (7.02, _mark("r3:0")),
    ]
    assert first_media_by_reply(received) == {1: 1.0, 2: 5.0, 3: 7.0}


# -- wasted tokens ---------------------------------------------------------------------------------------------


def test_wasted_tokens_are_the_dropped_preemptive_replies_share_of_all_chat_model_tokens():
    events = [
        ("model:preemptive:c1:4:llm_input_tokens", Decimal("100")),
        ("model:preemptive:c1:4:llm_output_tokens", Decimal("20")),
        ("turn:c1:5:llm_input_tokens", Decimal("800")),
        ("turn:c1:5:llm_output_tokens", Decimal("80")),
    ]
    assert wasted_pct(events) == (12.0, 120, 1000)
    assert wasted_pct([]) == (0.0, 0, 0)
    assert wasted_pct([("turn:c1:5:llm_input_tokens", 500), ("model:summary:preemptive:x", 500)]) == (0.0, 0, 1000)


@pytest.mark.django_db
def test_wasted_tokens_read_one_organizations_chat_model_events_after_the_mark(alpha, beta):
    from billing.models import UsageEvent

    def event(organization, metric: str, quantity: int, key: str) -> None:
        UsageEvent.objects.create(
            organization=organization,
            metric=metric,
            quantity=Decimal(quantity),
            occurred_at=datetime.now(UTC),
            idempotency_key=f"{key}:{uuid.uuid4()}",
        )

    event(alpha.organization, "llm_input_tokens", 1000, "model:preemptive:before-the-run")
    mark = usage_mark()
    event(alpha.organization, "llm_input_tokens", 30, "model:preemptive:c1:4")
    event(alpha.organization, "llm_output_tokens", 10, "model:preemptive:c1:4")
    event(alpha.organization, "llm_input_tokens", 150, "turn:c1:5")
    event(alpha.organization, "llm_output_tokens", 10, "turn:c1:5")
    event(alpha.organization, "tts_characters", 5000, "model:preemptive:c1:4")  # not chat-model tokens
    event(beta.organization, "llm_input_tokens", 800, "model:preemptive:c2:1")  # another organization's

    assert wasted_figures("alpha", mark) == {
        "wasted_llm_tokens_pct": 20.0,
        "llm_tokens": {"dropped_preemptive": 40, "all": 200},
    }
    assert wasted_figures("alpha", usage_mark()) == {
        "wasted_llm_tokens_pct": 0.0,
        "llm_tokens": {"dropped_preemptive": 0, "all": 0},
    }


# -- several runs ----------------------------------------------------------------------------------------------


def _run(values: dict[str, list[float]], dropped: int, total: int) -> tuple[dict, Samples]:
    samples = Samples()
    for name, run_values in values.items():
        samples.values[name] = run_values
    figures = {
        **samples.summaries(),
        "turns": len(values.get("overhead_ms", [])),
        "stale_audio_chunks": 0,
        "errors": 1,
        "llm_tokens": {"dropped_preemptive": dropped, "all": total},
        "server_cpu_ms_per_session_s": 2.0,
        "server_cpu_share_of_one_core": 0.5,
        "server_rss_mb": 300.0,
    }
    return figures, samples


def test_runs_combine_into_pooled_figures_and_the_spread_of_their_p95s():
    first = _run({"overhead_ms": [1.0, 2.0, 30.0], "voice_to_voice_ms": [1300.0, 1400.0]}, dropped=10, total=100)
    second = _run({"overhead_ms": [3.0, 4.0, 50.0], "voice_to_voice_ms": [1350.0]}, dropped=0, total=300)
    combined = combine_runs([first[0], second[0]], [first[1], second[1]])

    assert combined["overhead_ms"] == summary([1.0, 2.0, 30.0, 3.0, 4.0, 50.0])
    assert combined["voice_to_voice_ms"]["n"] == 3
    assert combined["turns"] == 6 and combined["errors"] == 2
    assert combined["wasted_llm_tokens_pct"] == 2.5
    assert combined["llm_tokens"] == {"dropped_preemptive": 10, "all": 400}
    spread = combined["spread"]["overhead_ms"]
    assert spread == {"p50": [2.0, 4.0], "p95": [30.0, 50.0], "p95_min": 30.0, "p95_max": 50.0}
    assert combined["spread"]["bargein_ms"]["p95_min"] is None  # no barge-in in either run

    line = runs_json({"sessions": 5}, {"cpu_count": 2}, [first[0], second[0]], combined)
    assert line["sessions"] == 5 and line["machine"] == {"cpu_count": 2}
    assert line["runs"] == [first[0], second[0]] and line["overhead_ms"] == combined["overhead_ms"]
    assert line["server_cpu_share_of_one_core"] == 0.5


# -- what a run ran on --------------------------------------------------------------------------------------------


def test_daphne_gets_the_lowest_core_and_everything_else_the_rest():
    assert core_plan({0, 1}) == (0, [1])
    assert core_plan({2, 3, 5}) == (2, [3, 5])
    assert core_plan({3}) == (3, [3])  # one core: shared


def test_a_bench_sees_other_voice_servers_that_may_run_on_its_core():
    processes = [
        (10, ["taskset", "-c", "0", "/x/.venv/bin/python", "-m", "aura.server", "-p", "8001"], [0]),  # another bench
        (11, ["/x/.venv/bin/python", "-m", "aura.server", "-p", "8000"], [0, 1]),  # make run: any core
        (12, ["/usr/bin/daphne", "aura.asgi:application"], [1]),  # pinned elsewhere
        (13, ["/x/.venv/bin/python", "-m", "pytest"], [0]),  # not a server
        (14, [], [0]),  # a kernel thread or one whose command line is hidden
    ]
    assert servers_sharing(0, processes) == [10, 11]
    assert servers_sharing(1, processes) == [11, 12]


def test_the_cpu_model_comes_from_proc_cpuinfo():
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\n"
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert cpu_model("processor\t: 0\nHardware\t: BCM2835\n") == "BCM2835"


def test_machine_info_names_cores_load_pinning_python_and_the_simulated_settings():
    info = machine_info(LATENCY, 600, sessions=5)
    assert {"cpu_count", "affinity", "load_average_at_start", "cpu_model", "python", "pinning"} <= info.keys()
    assert len(info["load_average_at_start"]) == 3
    assert set(info["pinning"]) == {"daphne", "clients", "postgresql", "redis"}
    assert info["pinning"]["daphne"][0] in info["affinity"]
    assert (info["simulated_latency"], info["end_silence_ms"], info["sessions"]) == (LATENCY, 600, 5)


def test_a_hesitant_question_has_its_longest_pause_stretched_and_nothing_else_changed():
    from bench.voice import hesitant, speech_bounds_ms
    from tests.voice.client import read_wav

    pcm, rate = read_wav("booking.wav")
    stretched, same_rate = hesitant(pcm, rate, 400)

    start, end = speech_bounds_ms(pcm, rate)
    assert same_rate == rate
    assert speech_bounds_ms(stretched, rate) == (start, end + 230)  # its 170 ms comma pause is now 400 ms
    assert len(stretched) == len(pcm) + 230 * 32  # 16 kHz, 16-bit: silence inserted, nothing else
    assert stretched[:32000] == pcm[:32000] and stretched[-32000:] == pcm[-32000:]
    assert hesitant(pcm, rate, 100)[0] == pcm  # a pause already longer than asked is left alone


def test_the_phone_overhead_is_split_into_ten_second_windows_of_the_run():
    started = 1000.0
    overhead_at = [(1001.0, 5.0), (1009.9, 7.0), (1012.0, 100.0), (999.0, 3.0), (1035.0, 40.0)]

    windows = overhead_by_window(overhead_at, started)

    assert windows == [
        {"from_s": 0.0, "n": 3, "p50": 5.0, "p95": 7.0},  # a turn that began before the run counts in the first
        {"from_s": 10.0, "n": 1, "p50": 100.0, "p95": 100.0},
        {"from_s": 30.0, "n": 1, "p50": 40.0, "p95": 40.0},  # an empty window is left out
    ]


def test_server_usage_reports_the_steady_window_apart():
    from bench.common import ServerUsage

    usage = ServerUsage.__new__(ServerUsage)
    usage.cpu_ms, usage.elapsed_s, usage.rss_peak_mb = 3000.0, 10.0, 100.0
    usage.steady, usage.steady_cpu_ms = (2.0, 7.0), 2000.0

    figures = usage.figures(sessions=10)

    assert figures["server_cpu_share_of_one_core"] == 0.3
    assert figures["server_steady_cpu_share_of_one_core"] == 0.4  # 2 s of CPU in the 5 s window
    assert figures["server_cpu_ms_per_session_s"] == 30.0


def test_one_benchmark_at_a_time(tmp_path):
    from bench.common import hold_bench_lock

    first = hold_bench_lock(tmp_path / "bench.lock")
    with pytest.raises(SystemExit, match="another benchmark is running"):
        hold_bench_lock(tmp_path / "bench.lock")
    first.close()  # the first bench ended
    hold_bench_lock(tmp_path / "bench.lock").close()
