"""The event-loop probe (core/looplag.py): lags, collections, stalls put down to the code and to their cause."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from core.looplag import Clocks, LoopLagProbe, Window, percentile, stall_cause


def test_percentiles_are_nearest_rank_and_empty_is_zero():
    assert percentile([], 0.95) == 0.0
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 51.0  # rank round(0.5 * 99) = 50 → the 51st value
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 1.0) == 100.0


def test_window_summary_counts_late_wakeups_and_collections():
    window = Window(lags_ms=[0.1, 0.2, 12.0, 30.0])
    window.gc_ms[1] += [3.0, 5.0]
    window.gc_cpu_ms[1] += [2.0, 4.0]
    window.gc_longest[1] = (4.0, 321)
    summary = window.summary()
    assert summary["wakeups"] == 4
    assert summary["lag_ms"]["max"] == 30.0
    assert (summary["late_over_10ms"], summary["late_over_25ms"]) == (2, 1)
    assert summary["gc"]["gen1"] == {
        "n": 2,
        "total_ms": 8.0,
        "max_ms": 5.0,
        "total_cpu_ms": 6.0,
        "max_cpu_ms": 4.0,
        "max_freed": 321,
    }
    assert summary["gc"]["gen0"]["n"] == 0
    assert "stalls" not in summary and "imported" not in summary


def test_a_stall_is_put_down_to_where_its_time_went():
    def split(wall: float, running: float, core: float, threads: float) -> dict[str, float]:
        return {"wall": wall, "loop_running": running, "loop_waiting_for_core": core, "other_threads_running": threads}

    assert stall_cause(split(40, 35, 3, 1)) == "running"  # the loop's own work (or a collection)
    assert stall_cause(split(40, 5, 30, 2)) == "core"  # another process had the core
    assert stall_cause(split(40, 2, 3, 30)) == "threads"  # this process's other threads held the GIL
    assert stall_cause(split(40, 1, 1, 1)) == "asleep"  # none of them: the machine itself


def test_clock_split_is_the_difference_of_two_readings_in_ms():
    before = Clocks(wall=10.0, loop_cpu=1.0, loop_waiting=0.5, process_cpu=2.0)
    after = Clocks(wall=10.05, loop_cpu=1.01, loop_waiting=0.52, process_cpu=2.03)
    split = after.split_since(before)
    assert round(split["wall"], 6) == 50.0
    assert round(split["loop_running"], 6) == 10.0
    assert round(split["loop_waiting_for_core"], 6) == 20.0
    assert round(split["other_threads_running"], 6) == 20.0  # the process's CPU less the loop thread's


def test_clocks_read_this_thread_and_process():
    reading = Clocks.read(time.pthread_getcpuclockid(__import__("threading").get_ident()), None)
    assert reading.loop_cpu > 0 and reading.process_cpu >= reading.loop_cpu and reading.loop_waiting == 0.0


def _blocks_the_loop() -> None:
    time.sleep(0.15)  # a synchronous call on the loop's thread, as a blocking database call would be


async def test_probe_records_lag_collections_and_the_stack_of_a_stall():
    probe = LoopLagProbe(interval_s=0.005, report_every_s=3600, stall_ms=40)
    probe.start()
    try:
        await asyncio.sleep(0.05)
        _blocks_the_loop()
        gc.collect()
        for _ in range(20):  # the watcher notes the stall once the loop wakes again
            await asyncio.sleep(0.01)
        window = probe.take_window()
    finally:
        probe.stop()
    assert window.lags_ms and max(window.lags_ms) > 40
    assert window.gc_ms[2] and window.gc_cpu_ms[2]  # the full collection above, on this thread
    assert sum(window.stall_causes.values()) >= 1
    stacks = " ".join(window.stalls)
    assert "_blocks_the_loop" in stacks and "test_looplag.py" in stacks
    assert window.stall_split_ms["wall"] > 40
    assert gc.callbacks.count(probe._on_gc) == 0


async def test_probe_logs_a_report_each_window(caplog):
    probe = LoopLagProbe(interval_s=0.005, report_every_s=0.02, watch_stalls=False)
    with caplog.at_level(logging.INFO, logger="core.looplag"):
        probe.start()
        try:
            await asyncio.sleep(0.1)
        finally:
            probe.stop()
    reports = [record.getMessage() for record in caplog.records if "event loop lag:" in record.getMessage()]
    assert reports and "'lag_ms'" in reports[0] and "'window_split_ms'" in reports[0]
