"""How late the event loop runs, and why: a probe a server process can switch on (``AURA_LOOP_LAG_LOG``).

Every audio frame and every reply's pacing waits for the one event-loop thread; when something holds it
(a long callback, a garbage collection, another thread keeping the GIL), every session is late by as much.
The probe measures that directly, whatever the load on the machine:

* lag: a task sleeps ``interval_s`` over and over and records how much later than asked it woke;
* garbage collections: each one's pause, by generation (``gc.callbacks``), on whichever thread ran it;
* stalls: a watcher thread notices when the loop has not woken for ``stall_ms`` and takes the loop
  thread's stack at that moment (and the innermost frame of every other thread), so a stall is put
  down to the code that was running; and it splits the stall's time, from the kernel's accounting, into
  the loop thread running (its own work or a collection), the loop thread ready to run but waiting for
  the core (another process or thread had it: ``/proc/self/task/<tid>/schedstat``), and the rest, where
  it slept while this process's other threads ran (waiting for the GIL they held).

Each ``report_every_s`` one log line (logger ``core.looplag``, INFO) gives the lag percentiles, the
collections and the most frequent stall stacks of that window, and the window starts again. Off unless
switched on: the watcher thread takes the GIL 200 times a second.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Window:
    """What one report covers: the loop's wake-up lags, collection pauses and stall stacks (all in ms)."""

    lags_ms: list[float] = field(default_factory=list)
    gc_ms: dict[int, list[float]] = field(default_factory=lambda: {0: [], 1: [], 2: []})
    gc_cpu_ms: dict[int, list[float]] = field(default_factory=lambda: {0: [], 1: [], 2: []})  # the same, CPU
    gc_longest: dict[int, tuple[float, int]] = field(default_factory=dict)  # CPU ms, objects freed
    imported: list[str] = field(default_factory=list)  # modules first imported during the window
    stalls: collections.Counter[str] = field(default_factory=collections.Counter)
    stall_ms: dict[str, float] = field(default_factory=dict)  # longest stall seen for each stack
    # Where the stalls' time went (ms summed over the window's stalls): see ``StallTimes``.
    stall_causes: collections.Counter[str] = field(default_factory=collections.Counter)  # see ``stall_cause``
    stall_split_ms: dict[str, float] = field(
        default_factory=lambda: {
            "wall": 0.0,
            "loop_running": 0.0,
            "loop_waiting_for_core": 0.0,
            "other_threads_running": 0.0,
        }
    )

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.lags_ms)
        result: dict[str, Any] = {
            "wakeups": len(lags),
            "lag_ms": {
                "p50": round(percentile(lags, 0.5), 2),
                "p95": round(percentile(lags, 0.95), 2),
                "p99": round(percentile(lags, 0.99), 2),
                "max": round(lags[-1], 2) if lags else 0.0,
            },
            "late_over_10ms": sum(1 for lag in lags if lag > 10),
            "late_over_25ms": sum(1 for lag in lags if lag > 25),
            "gc": {
                f"gen{generation}": {
                    "n": len(pauses),
                    "total_ms": round(sum(pauses), 1),
                    "max_ms": round(max(pauses), 2) if pauses else 0.0,
                    "total_cpu_ms": round(sum(self.gc_cpu_ms.get(generation, [])), 1),
                    "max_cpu_ms": round(self.gc_longest.get(generation, (0.0, 0))[0], 2),
                    "max_freed": self.gc_longest.get(generation, (0.0, 0))[1],
                }
                for generation, pauses in self.gc_ms.items()
            },
        }
        if self.imported:
            result["imported"] = self.imported
        if self.stalls:
            result["stall_causes"] = dict(self.stall_causes)
            result["stall_split_ms"] = {name: round(ms, 1) for name, ms in self.stall_split_ms.items()}
            result["stalls"] = [
                {"samples": count, "max_ms": round(self.stall_ms[stack], 1), "stack": stack}
                for stack, count in self.stalls.most_common(8)
            ]
        return result


@dataclass(frozen=True, slots=True)
class Clocks:
    """The kernel's time accounting at one moment (seconds): wall, the loop thread's CPU time and its
    time ready to run but not running, and the whole process's CPU time."""

    wall: float
    loop_cpu: float
    loop_waiting: float
    process_cpu: float

    @staticmethod
    def read(loop_clock: int | None, schedstat: str | None) -> Clocks:
        waiting = 0.0
        if schedstat is not None:
            try:
                with open(schedstat, "rb") as file:  # "<on cpu ns> <waiting on a run queue ns> <timeslices>"
                    waiting = int(file.read().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                pass
        return Clocks(
            wall=time.monotonic(),
            loop_cpu=time.clock_gettime(loop_clock) if loop_clock is not None else 0.0,
            loop_waiting=waiting,
            process_cpu=time.process_time(),
        )

    def split_since(self, before: Clocks) -> dict[str, float]:
        """Milliseconds from ``before`` to this reading, by where the loop thread's time went."""
        loop_cpu = self.loop_cpu - before.loop_cpu
        return {
            "wall": (self.wall - before.wall) * 1000,
            "loop_running": loop_cpu * 1000,
            "loop_waiting_for_core": (self.loop_waiting - before.loop_waiting) * 1000,
            "other_threads_running": max(0.0, self.process_cpu - before.process_cpu - loop_cpu) * 1000,
        }


def stall_cause(split: dict[str, float]) -> str:
    """What most of a stall's time went to: ``running`` (the loop thread ran: its own work or a garbage
    collection), ``core`` (it was ready but the core ran something else: another process, or one of this
    process's threads outside Python), ``threads`` (it slept while this process's other threads ran:
    the GIL) or ``asleep`` (none of these: the virtual machine was not running, or a timer fired late)."""
    accounted = split["loop_running"] + split["loop_waiting_for_core"] + split["other_threads_running"]
    parts = {
        "running": split["loop_running"],
        "core": split["loop_waiting_for_core"],
        "threads": split["other_threads_running"],
        "asleep": split["wall"] - accounted,
    }
    return max(parts, key=lambda name: parts[name])


class LoopLagProbe:
    """``start()`` on the running loop's thread; ``stop()`` undoes it. ``window`` holds the figures so far."""

    def __init__(
        self,
        *,
        interval_s: float = 0.01,
        report_every_s: float = 10.0,
        stall_ms: float = 25.0,
        watch_stalls: bool = True,
    ) -> None:
        self.interval_s = interval_s
        self.report_every_s = report_every_s
        self.stall_s = stall_ms / 1000
        self.watch_stalls = watch_stalls
        self.window = Window()
        self._due = 0.0  # when the loop's probe task should next wake (monotonic s)
        self._gc_started: dict[int, float] = {}  # thread id → perf_counter at the start of its collection
        self._task: asyncio.Task[None] | None = None
        self._watcher: threading.Thread | None = None
        self._stopped = threading.Event()
        self._loop_thread = 0
        self._loop_clock: int | None = None  # the loop thread's CPU-time clock
        self._schedstat: str | None = None

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start on ``loop`` (by default the running one), from the thread that runs it."""
        loop = loop or asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        try:
            self._loop_clock = time.pthread_getcpuclockid(self._loop_thread)
        except (AttributeError, OSError):  # not on this platform: the split shows no loop time
            self._loop_clock = None
        schedstat = f"/proc/self/task/{threading.get_native_id()}/schedstat"
        self._schedstat = schedstat if os.path.exists(schedstat) else None
        self._due = time.monotonic() + self.interval_s
        gc.callbacks.append(self._on_gc)
        self._task = loop.create_task(self._run(), name="loop-lag-probe")
        if self.watch_stalls:
            self._watcher = threading.Thread(target=self._watch, name="loop-lag-watcher", daemon=True)
            self._watcher.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()

    def take_window(self) -> Window:
        """The figures since the last call, and a fresh window for the next."""
        window, self.window = self.window, Window()
        return window

    async def _run(self) -> None:
        next_report = time.monotonic() + self.report_every_s
        window_start = Clocks.read(self._loop_clock, self._schedstat)
        modules = set(sys.modules)
        while True:
            self._due = time.monotonic() + self.interval_s
            await asyncio.sleep(self.interval_s)
            now = time.monotonic()
            self.window.lags_ms.append(max(0.0, (now - self._due) * 1000))
            if now >= next_report:
                next_report = now + self.report_every_s
                clocks = Clocks.read(self._loop_clock, self._schedstat)
                loaded = set(sys.modules)
                self.window.imported = sorted(loaded - modules)
                modules = loaded
                report = self.take_window().summary()
                report["window_split_ms"] = {
                    name: round(ms, 1) for name, ms in clocks.split_since(window_start).items()
                }
                window_start = clocks
                logger.info("event loop lag: %s", report)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        thread = threading.get_ident()
        if phase == "start":
            self._gc_started[thread] = (time.perf_counter(), time.thread_time())
        elif (started := self._gc_started.pop(thread, None)) is not None:
            wall, cpu = started
            generation = info["generation"]
            self.window.gc_ms.setdefault(generation, []).append((time.perf_counter() - wall) * 1000)
            cpu_ms = (time.thread_time() - cpu) * 1000
            self.window.gc_cpu_ms.setdefault(generation, []).append(cpu_ms)
            if cpu_ms >= self.window.gc_longest.get(generation, (0.0, 0))[0]:  # how much the longest one freed
                self.window.gc_longest[generation] = (cpu_ms, info.get("collected", 0))

    def _watch(self) -> None:
        """Every 5 ms: has the loop's probe task overslept by ``stall_ms``? Then, until it wakes, take the
        loop thread's stack every 5 ms; once it woke, put the stall's time down to its cause."""
        recent: collections.deque[Clocks] = collections.deque(maxlen=64)  # the last 320 ms of readings
        stall_due, before, last, stacks = 0.0, None, None, collections.Counter[str]()
        while not self._stopped.wait(0.005):
            clocks = Clocks.read(self._loop_clock, self._schedstat)
            recent.append(clocks)
            due = self._due
            stalled = clocks.wall - due >= self.stall_s
            if before is not None and last is not None and (due != stall_due or not stalled):
                self._note_stall(last.split_since(before), stacks)  # the loop woke: the stall is over
                before, last, stacks = None, None, collections.Counter()
            if not stalled:
                continue
            if before is None:  # a new stall: from the last reading at or before the loop's due wake-up
                stall_due = due
                before = next((reading for reading in reversed(recent) if reading.wall <= due), recent[0])
            last = clocks
            stacks[self.stack_now()] += 1

    def _note_stall(self, split: dict[str, float], stacks: collections.Counter[str]) -> None:
        window = self.window
        for name, ms in split.items():
            window.stall_split_ms[name] += ms
        cause = stall_cause(split)
        window.stall_causes[cause] += 1
        for stack, count in stacks.items():
            key = f"{cause}: {stack}"
            window.stalls[key] += count
            window.stall_ms[key] = max(window.stall_ms.get(key, 0.0), split["wall"])

    def stack_now(self) -> str:
        """The loop thread's innermost frames (innermost first), then the innermost frame of every other thread."""
        frames = sys._current_frames()  # noqa: SLF001 - the documented way to see another thread's stack
        loop_frame = frames.get(self._loop_thread)
        parts = [_short_stack(loop_frame) if loop_frame is not None else "?"]
        for ident, frame in frames.items():
            if ident not in (self._loop_thread, threading.get_ident()) and not _idle(frame):
                parts.append(f"[thread] {_where(frame)}")
        return " | ".join(parts)


def _idle(frame: Any) -> bool:
    """A thread parked in a wait (an idle database thread, a pool worker), not running Python."""
    return frame.f_code.co_filename.endswith("threading.py") or frame.f_code.co_name in ("wait", "_worker")


def _where(frame: Any) -> str:
    code = frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} {code.co_name}"


def _short_stack(frame: Any, depth: int = 12) -> str:
    summary = traceback.extract_stack(frame, limit=depth)
    return " < ".join(f"{entry.filename.rsplit('/', 1)[-1]}:{entry.lineno} {entry.name}" for entry in reversed(summary))


_probe: LoopLagProbe | None = None


def start_probe(report_every_s: float, loop: asyncio.AbstractEventLoop | None = None) -> LoopLagProbe:
    """Start the process's probe (once) on ``loop`` (by default the running one), from the loop's
    thread; its reports are logged at INFO whatever the process's log level."""
    global _probe
    if _probe is None:
        logger.setLevel(logging.INFO)
        _probe = LoopLagProbe(report_every_s=report_every_s)
        _probe.start(loop)
        logger.info("event loop lag probe on: a report every %.0f s", report_every_s)
    return _probe
