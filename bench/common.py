"""What every benchmark shares: figures as p50/p95/max, and a fresh platform with one organization.

For the voice benchmarks (bench.voice, bench.phone) also: what the run ran on (``machine_info``), the
daphne process pinned to one core (``pinned_daphne``), how each reply's timing is counted
(``reply_timing``), the share of chat-model tokens thrown away (``wasted_pct``) and the figures of
several runs in a row (``combine_runs``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
# The cores this process may use before any pinning: every run of ``--runs`` pins from these again.
AFFINITY = frozenset(os.sched_getaffinity(0))
# A dropped preemptive reply's tokens are billed under this key prefix (billing.actions.do_record_model_usage).
PREEMPTIVE_KEY_PREFIX = "model:preemptive:"


def summary(values: list[float], digits: int = 1, *, p99: bool = False) -> dict[str, float | None]:
    """p50, p95 (and with ``p99`` the 99th percentile), max and n, nearest-rank."""
    if not values:
        return {"p50": None, "p95": None, **({"p99": None} if p99 else {}), "max": None, "n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], digits)

    return {
        "p50": round(statistics.median(ordered), digits),
        "p95": rank(0.95),
        **({"p99": rank(0.99)} if p99 else {}),
        "max": round(ordered[-1], digits),
        "n": len(ordered),
    }


BENCH_LOCK = ROOT / ".data" / "bench.lock"
_held_lock: list[IO[str]] = []  # this process's hold on BENCH_LOCK, kept until it exits


def hold_bench_lock(path: Path = BENCH_LOCK) -> IO[str]:
    """One benchmark at a time from this checkout: an exclusive lock on ``path``, released when the
    process ends. A second bench would delete the first's embedded database under it (the same data
    directory, or with DATABASE_URL the same "bench" organization), and the two would measure each
    other's load."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SystemExit(f"another benchmark is running from this checkout (it holds {path}): one at a time") from None
    return handle


def fresh_platform(name: str, **env: str) -> Any:
    """Embedded PostgreSQL and Redis under .data/bench-<name> (new each run unless DATABASE_URL is set),
    Django set up with ``env`` as defaults, the platform migrated, and the organization "bench" created.
    Only while no other benchmark runs (``hold_bench_lock``)."""
    if not _held_lock:
        _held_lock.append(hold_bench_lock())
    sys.path.insert(0, str(ROOT))
    data_dir = ROOT / ".data" / f"bench-{name}"
    if not os.environ.get("DATABASE_URL") and data_dir.exists():
        shutil.rmtree(data_dir)
    for key, value in {
        "AURA_ENV": "development",
        "AURA_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "aura.settings.base",
        **env,
    }.items():
        os.environ.setdefault(key, value)
    from aura.embedded_services import ensure_services

    ensure_services(data_dir, durable=False)
    import django

    django.setup()
    from django.core.management import call_command

    from aura.workflows.organizations import open_organization
    from tenants.actions import NewOrganization

    call_command("setup_platform", verbosity=0)
    return open_organization(
        NewOrganization(name="Bench", slug="bench", admin_email="bench@bench.example", admin_password="bench-pass-123")
    )


ANSWERS = ("preemptive", "after-turn")  # --answer: start the reply in the pause (the default), or after the turn
STT_MODES = ("streaming", "batch")  # --stt: the simulated speech-to-text streams (the default) or not


def stt_env(stt: str) -> dict[str, str]:
    """The server's environment for ``--stt``: batch turns the simulated provider's streaming off."""
    return {"AURA_SIMULATED_STT_STREAMING": "false"} if stt == "batch" else {}


def simulated_latency_env(latency: dict[str, float]) -> dict[str, str]:
    """The server's simulated providers with fixed latencies (``stt_ms``, optional ``stt_stream_ms``: a
    streaming transcript's commit, ``llm_first_token_ms``, ``llm_tokens_per_s``, ``tts_first_byte_ms``)
    and a tone for a voice."""
    return {
        "AURA_SIMULATED_STT_MS": str(latency["stt_ms"]),
        **({"AURA_SIMULATED_STT_STREAM_MS": str(latency["stt_stream_ms"])} if "stt_stream_ms" in latency else {}),
        "AURA_SIMULATED_LLM_FIRST_TOKEN_MS": str(latency["llm_first_token_ms"]),
        "AURA_SIMULATED_LLM_TOKENS_PER_S": str(latency["llm_tokens_per_s"]),
        "AURA_SIMULATED_TTS_FIRST_BYTE_MS": str(latency["tts_first_byte_ms"]),
        "AURA_SIMULATED_TTS_VOICE": "tone",
        "LOG_LEVEL": "WARNING",
    }


def core_plan(cores: Iterable[int] = AFFINITY) -> tuple[int, list[int]]:
    """The core daphne is pinned to (the lowest) and the cores of everything else (the rest, or the same
    core on a one-core machine)."""
    available = set(cores)
    server_core = min(available)
    return server_core, sorted(available - {server_core}) or [server_core]


def servers_sharing(core: int, processes: Iterable[tuple[int, list[str], list[int]]]) -> list[int]:
    """The pids among ``processes`` (pid, command line, cores it may run on) of voice servers (``aura.server``
    or ``daphne``) that may run on ``core``: a bench beside one measures the two servers together."""
    found = []
    for pid, cmdline, cores in processes:
        names = {part.rsplit("/", 1)[-1] for part in cmdline}
        if core in cores and ("aura.server" in names or "daphne" in names):
            found.append(pid)
    return found


def refuse_shared_core(core: int) -> None:
    """Stop before a bench starts its server if another voice server may run on the same core (another
    bench's, or ``make run``'s): its work would be counted as this server's. BENCH_ALLOW_SHARED_CORE=1
    runs anyway."""
    import psutil

    processes = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            processes.append((process.info["pid"], process.info["cmdline"] or [], process.cpu_affinity()))
    others = servers_sharing(core, [entry for entry in processes if entry[0] != os.getpid()])
    if others and os.environ.get("BENCH_ALLOW_SHARED_CORE") != "1":
        raise SystemExit(
            f"another voice server may run on core {core}, where this bench pins its own (pids "
            f"{', '.join(map(str, others))}): stop it (or set BENCH_ALLOW_SHARED_CORE=1 to measure both together)"
        )


def cpu_model(cpuinfo: str | None = None) -> str:
    """The processor's name from /proc/cpuinfo (``platform.processor()`` where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def machine_info(latency: dict[str, float], end_silence_ms: int, **settings: object) -> dict[str, Any]:
    """What a run ran on, for anyone who reruns it: cores, load, processor, the pinning, Python, and the
    simulated providers' latencies and end-of-turn silence it was given."""
    server_core, other_cores = core_plan()
    return {
        "cpu_count": os.cpu_count(),
        "affinity": sorted(AFFINITY),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "pinning": {"daphne": [server_core], "clients": other_cores, "postgresql": other_cores, "redis": other_cores},
        "simulated_latency": latency,
        "end_silence_ms": end_silence_ms,
        **settings,
    }


def print_machine(info: dict[str, Any]) -> None:
    pinning = info["pinning"]
    print(
        f"{'machine':>22}: {info['cpu_model']}, {info['cpu_count']} cores (this process may use "
        f"{info['affinity']}), load average {' '.join(str(x) for x in info['load_average_at_start'])}, "
        f"Python {info['python']}"
    )
    print(
        f"{'pinning':>22}: daphne on core {pinning['daphne']}; clients {pinning['clients']}, "
        f"PostgreSQL {pinning['postgresql']}, Redis {pinning['redis']}"
    )
    extra = {k: v for k, v in info.items() if k not in _MACHINE_PRINTED}
    print(f"{'settings':>22}: {json.dumps(extra)}")


_MACHINE_PRINTED = {"cpu_count", "affinity", "load_average_at_start", "cpu_model", "python", "pinning"}


@contextlib.contextmanager
def pinned_daphne(data_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """One daphne process (``aura.server``) pinned to one core, the caller (the clients), PostgreSQL and
    Redis moved to the others (``core_plan``); yields (base URL, daphne's pid) once /healthz answers.
    The caller's own cores are given back afterwards, so the next run pins the same way."""
    import psutil

    from aura.embedded_services import free_port

    port = free_port()
    server_env = dict(os.environ)
    server_env.update(env)
    server_env["AURA_PLATFORM_URL"] = f"http://localhost:{port}"
    server_core, other_cores = core_plan()
    refuse_shared_core(server_core)
    client_cores = set(other_cores)
    log = (data_dir / "daphne.log").open("wb")
    server = [sys.executable, "-m", "aura.server", "-b", "127.0.0.1", "-p", str(port), "aura.asgi:application"]
    daphne = subprocess.Popen(
        ["taskset", "-c", str(server_core), *server],
        cwd=ROOT,
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    os.sched_setaffinity(0, client_cores)
    # The database and Redis serve the server but must not share its core: move them to the clients'.
    for processes in _services(data_dir).values():
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.cpu_affinity(sorted(client_cores))
    try:
        base_url = f"http://localhost:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base_url}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield base_url, daphne.pid
    finally:
        daphne.terminate()
        try:
            daphne.wait(15)
        except subprocess.TimeoutExpired:
            print("daphne did not stop within 15 s of SIGTERM; killed", file=sys.stderr)
            daphne.kill()
        os.sched_setaffinity(0, AFFINITY)


def _services(data_dir: Path) -> dict[str, list[Any]]:
    """The embedded PostgreSQL's processes (under ``data_dir``) and the Redis server of REDIS_URL."""
    import psutil

    redis_port = os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    found: dict[str, list[Any]] = {"postgresql": [], "redis": []}
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(data_dir) in cmdline and "postgres" in cmdline:
            found["postgresql"].append(process)
        elif "redis-server" in cmdline and redis_port in cmdline:
            found["redis"].append(process)
    return found


def observed_pinning(daphne_pid: int, data_dir: Path) -> dict[str, list[int] | None]:
    """The cores each side may actually use during a run (None: the process was not found, e.g. a
    PostgreSQL of DATABASE_URL elsewhere), as the run's record of ``machine_info``'s plan."""
    import psutil

    def cores(processes: list[Any]) -> list[int] | None:
        seen: set[int] = set()
        for process in processes:
            with contextlib.suppress(psutil.Error):
                seen.update(process.cpu_affinity())
        return sorted(seen) or None

    return {
        "daphne": cores([psutil.Process(daphne_pid), *psutil.Process(daphne_pid).children(recursive=True)]),
        "clients": sorted(os.sched_getaffinity(0)),
        **{name: cores(processes) for name, processes in _services(data_dir).items()},
    }


def print_voice_figures(result: dict[str, Any]) -> None:
    """The voice benchmarks' figures (bench.voice, bench.phone), one per line."""
    for name in ("endpoint_delay_ms", "voice_to_voice_ms", "overhead_ms", "release_ms", "bargein_ms"):
        print(f"{name:>22}: {result[name]}")
    tokens = result["llm_tokens"]
    print(
        f"{'wasted_llm_tokens_pct':>22}: {result['wasted_llm_tokens_pct']} "
        f"({tokens['dropped_preemptive']} of {tokens['all']} chat-model tokens)"
    )
    print(f"{'turns':>22}: {result['turns']}  stale chunks: {result['stale_audio_chunks']}  errors: {result['errors']}")
    for sample in result["error_samples"]:
        print(f"{'error':>22}: {sample}")
    print(
        f"{'server':>22}: {result['server_cpu_ms_per_session_s']} ms CPU per session-second, "
        f"{result['server_cpu_share_of_one_core']:.0%} of one core, {result['server_rss_mb']} MB RSS"
        + (
            f"; {steady:.0%} of one core after the ramp"
            if (steady := result.get("server_steady_cpu_share_of_one_core")) is not None
            else ""
        )
    )


@contextlib.contextmanager
def callers_without_collections() -> Iterator[None]:
    """The load generator's cyclic garbage collector off while the callers run, back on after.

    200 callers keep every message they received (to time the replies at the end): at 200 calls the
    heap grew so large that a full collection stopped every caller for 188-597 ms (7 times in one run of
    bench.phone, 4.7 s of collection in all), after which each sent the 30 frames it owed at once. The
    server then measured the generator's bursts, and the callers' clocks (barge-in, voice to voice) ran
    late. What they allocate is freed by reference counting; the few cycles wait for the end of the run.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


class ServerUsage:
    """The server process's CPU time and peak memory over a load run (memory sampled once a second).

    ``async with ServerUsage(pid, steady=(ramp_s, seconds)) as usage: …`` then ``usage.figures(sessions)``.
    The whole run's CPU includes the ramp (every session's set-up: webhooks, tokens, database rows);
    ``steady`` names a window, in seconds from the start, after the ramp, and its CPU share is reported
    apart: mostly the per-message cost, which the tail follows. Sessions that rang late in the ramp can
    still be setting up at its start (a phone webhook's p95 can pass a second under load).
    """

    def __init__(self, pid: int, *, steady: tuple[float, float] | None = None) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self.rss_peak_mb = 0.0
        self.cpu_ms = 0.0
        self.elapsed_s = 0.0
        self.steady = steady if steady is not None and steady[1] - steady[0] >= 2 else None
        self.steady_cpu_ms: float | None = None

    def _cpu_s(self) -> float:
        return sum(self._process.cpu_times()[:2])

    async def _sample(self) -> None:
        while True:
            self.rss_peak_mb = max(self.rss_peak_mb, self._process.memory_info().rss / 2**20)
            await asyncio.sleep(1)

    async def _measure_steady(self, start_s: float, end_s: float) -> None:
        await asyncio.sleep(max(0.0, self._started + start_s - time.monotonic()))
        before = self._cpu_s()
        await asyncio.sleep(max(0.0, self._started + end_s - time.monotonic()))
        self.steady_cpu_ms = (self._cpu_s() - before) * 1000

    async def __aenter__(self) -> ServerUsage:
        self._cpu_before = self._cpu_s()
        self._started = time.monotonic()
        self._sampler = asyncio.create_task(self._sample())
        self._steady_task = asyncio.create_task(self._measure_steady(*self.steady)) if self.steady else None
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._sampler.cancel()
        if self._steady_task is not None:
            self._steady_task.cancel()
        self.elapsed_s = time.monotonic() - self._started
        self.cpu_ms = (self._cpu_s() - self._cpu_before) * 1000

    def figures(self, sessions: int) -> dict[str, float | None]:
        steady_share = None
        if self.steady is not None and self.steady_cpu_ms is not None:
            steady_share = round(self.steady_cpu_ms / 1000 / (self.steady[1] - self.steady[0]), 3)
        return {
            "server_cpu_ms_per_session_s": round(self.cpu_ms / (sessions * self.elapsed_s), 2),
            "server_cpu_share_of_one_core": round(self.cpu_ms / 1000 / self.elapsed_s, 3),
            "server_steady_cpu_share_of_one_core": steady_share,
            "server_rss_mb": round(self.rss_peak_mb, 1),
        }


# -- how a reply's timing counts ------------------------------------------------------------------------


# How much sooner than its configured latency a simulated provider's answer can be measured (the
# server's clock starts a little after the provider's timer, and timers fire on a coarse grid).
STT_EARLY_MS = 5.0


def expected_stt_ms(measured_ms: float | None, configured: Iterable[float]) -> float:
    """The speech-to-text latency a reply waited for after the turn was detected: the largest configured
    latency (0: the transcript was already there, as semantic end of turn's speculative one; the
    streaming commit; the batch request) not above what the server measured (+ ``STT_EARLY_MS``). A
    provider cannot answer much sooner than its configured latency, so a measured time well below the
    batch latency was a faster path. (A streaming commit later than the batch latency would count as a
    batch request: the server does not say which path a transcript took.)"""
    if measured_ms is None:
        return 0.0
    return max((latency for latency in (0.0, *configured) if latency <= measured_ms + STT_EARLY_MS), default=0.0)


def reply_timing(
    metrics: dict[str, Any], *, reply_provider_ms: float, stt_latencies: Iterable[float]
) -> tuple[str, float] | None:
    """How a reply with audio counts: ``("overhead", ms)``, the server's own time beyond the providers', or
    ``("release", ms)``, for a reply whose audio was ready before the turn ended. None without audio.

    ``metrics`` are the reply's ``response.done`` metrics (``first_audio_ms`` from turn detection);
    ``reply_provider_ms`` the simulated chat model's and voice's configured time to the first audio (first
    token + the words of the first piece + text-to-speech first byte), without speech-to-text.

    - An ordinary reply: first_audio_ms − the speech-to-text latency it waited for (``expected_stt_ms``)
      − ``reply_provider_ms``.
    - A preemptive reply (``preemptive``) whose audio was ready before the turn ended
      (``ready_before_turn_end_ms`` > 0): its first_audio_ms is only how long releasing it took, reported
      as ``release``; the providers worked during the pause, so there is no overhead to speak of.
    - A preemptive reply that was not ready when the turn ended: overhead, counted from its own start.
      With ``started_before_turn_end_ms`` in the metrics: first_audio_ms + that − ``reply_provider_ms``
      (it started from a transcript). Without it, the excess of its own provider stages (first piece of
      text and text-to-speech first byte, each timed from its own request) over their configured times:
      a lower bound that leaves out the gaps between the stages.
    """
    first_audio_ms = metrics.get("first_audio_ms")
    if first_audio_ms is None:
        return None
    if metrics.get("preemptive"):
        if (metrics.get("ready_before_turn_end_ms") or 0) > 0:
            return "release", float(first_audio_ms)
        started = metrics.get("started_before_turn_end_ms")
        if started is not None:
            return "overhead", first_audio_ms + started - reply_provider_ms
        own = [metrics.get("llm_first_sentence_ms"), metrics.get("tts_first_byte_ms")]
        if None in own:
            return None
        return "overhead", sum(own) - reply_provider_ms
    stt_ms = expected_stt_ms(metrics.get("stt_ms"), stt_latencies)
    return "overhead", first_audio_ms - stt_ms - reply_provider_ms


# -- chat-model tokens thrown away ------------------------------------------------------------------------


def wasted_pct(events: Iterable[tuple[str, Decimal | float | int]]) -> tuple[float, int, int]:
    """(percentage, dropped tokens, all tokens) of chat-model token events given as (idempotency key,
    quantity): the tokens of preemptive replies dropped because the visitor went on speaking over all."""
    dropped = total = Decimal(0)
    for key, quantity in events:
        total += Decimal(quantity)
        if key.startswith(PREEMPTIVE_KEY_PREFIX):
            dropped += Decimal(quantity)
    pct = float(round(dropped / total * 100, 2)) if total else 0.0
    return pct, int(dropped), int(total)


def usage_mark() -> int:
    """The newest usage event now: a run's events are the ones after it."""
    from django.db.models import Max

    from billing.models import UsageEvent

    return UsageEvent.objects.aggregate(last=Max("pk"))["last"] or 0


def llm_token_events(slug: str, after: int) -> list[tuple[str, Decimal]]:
    """The chat-model token events (input and output) of the organization ``slug`` after ``usage_mark``."""
    from billing.models import Metric, UsageEvent

    return list(
        UsageEvent.objects.filter(
            organization__slug=slug,
            metric__in=(Metric.LLM_INPUT_TOKENS, Metric.LLM_OUTPUT_TOKENS),
            pk__gt=after,
        ).values_list("idempotency_key", "quantity")
    )


def wasted_figures(slug: str, after: int) -> dict[str, Any]:
    pct, dropped, total = wasted_pct(llm_token_events(slug, after))
    return {"wasted_llm_tokens_pct": pct, "llm_tokens": {"dropped_preemptive": dropped, "all": total}}


# -- several runs in a row ----------------------------------------------------------------------------------

SAMPLED = ("endpoint_delay_ms", "voice_to_voice_ms", "overhead_ms", "release_ms", "bargein_ms")
SPREAD = ("overhead_ms", "voice_to_voice_ms", "bargein_ms")
COUNTED = ("turns", "stale_audio_chunks", "errors")


@dataclass
class Samples:
    """One run's raw values, by figure name (``SAMPLED``)."""

    values: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in SAMPLED})

    def summaries(self) -> dict[str, dict[str, float | None]]:
        return {name: summary(values) for name, values in self.values.items()}


def combine_runs(runs: list[dict[str, Any]], samples: list[Samples]) -> dict[str, Any]:
    """The figures of all runs together (each figure over every run's values; counts and tokens summed)
    and each run's p50/p95 with the spread (min–max) of the runs' p95s."""
    pooled = Samples()
    for run in samples:
        for name, values in run.values.items():
            pooled.values[name].extend(values)
    dropped = sum(run["llm_tokens"]["dropped_preemptive"] for run in runs)
    total = sum(run["llm_tokens"]["all"] for run in runs)
    spread: dict[str, Any] = {}
    for name in SPREAD:
        p95s = [run[name]["p95"] for run in runs if run[name]["p95"] is not None]
        spread[name] = {
            "p50": [run[name]["p50"] for run in runs],
            "p95": [run[name]["p95"] for run in runs],
            "p95_min": min(p95s, default=None),
            "p95_max": max(p95s, default=None),
        }
    return {
        **pooled.summaries(),
        **{name: sum(run[name] for run in runs) for name in COUNTED},
        "wasted_llm_tokens_pct": float(round(Decimal(dropped) / total * 100, 2)) if total else 0.0,
        "llm_tokens": {"dropped_preemptive": dropped, "all": total},
        "spread": spread,
    }


def print_runs(combined: dict[str, Any]) -> None:
    """Each run's p50/p95 of the spread figures, and the spread of their p95s."""
    spread = combined["spread"]
    runs = len(spread[SPREAD[0]]["p95"])
    print(f"{'runs':>22}: {runs}")
    for name in SPREAD:
        figures = " · ".join(f"{p50}/{p95}" for p50, p95 in zip(spread[name]["p50"], spread[name]["p95"], strict=True))
        print(f"{name:>22}: p50/p95 per run {figures}; p95 spread {spread[name]['p95_min']}–{spread[name]['p95_max']}")
    print(f"{'all runs':>22}: " + ", ".join(f"{name} {combined[name]}" for name in SPREAD))


def runs_json(
    settings: dict[str, Any], info: dict[str, Any], runs: list[dict[str, Any]], combined: dict[str, Any]
) -> dict:
    """The --json line: the settings and the figures of all runs together at the top level (as one run's
    JSON had them; the server's CPU and memory figures are the mean of the runs'), ``machine``, and
    ``runs``, each run's own figures."""
    usage = ("server_cpu_ms_per_session_s", "server_cpu_share_of_one_core", "server_rss_mb")
    steady = [share for run in runs if (share := run.get("server_steady_cpu_share_of_one_core")) is not None]
    return {
        **settings,
        **combined,
        **{name: round(statistics.fmean(run[name] for run in runs), 3) for name in usage},
        "server_steady_cpu_share_of_one_core": round(statistics.fmean(steady), 3) if steady else None,
        "machine": info,
        "runs": runs,
    }


LINES = ("continuous", "speech")


class AudioLine:
    """A caller's or visitor's audio as their client sends it. ``continuous`` (the benches' default): one
    frame every ``frame_s`` for as long as the session lasts, silence between the words, as a phone line
    (Twilio's media messages) and an open microphone (the widget) carry sound whether or not anyone
    speaks. Otherwise the words only, as the benches sent before 2026-12-07: about a third of the
    messages of a call.

    ``say`` puts words on the line: (when their first sample was "spoken", that is one frame period before
    the first of them was due to leave; when the last of them did leave, however late), as
    monotonic-clock futures. ``lateness_ms`` tells how late the last frame of some words left."""

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        *,
        frame_bytes: int,
        frame_s: float,
        silence: bytes,
        continuous: bool,
    ) -> None:
        self._send = send
        self._frame_bytes = frame_bytes
        self._frame_s = frame_s
        self._silence = silence * (frame_bytes // len(silence))
        self.continuous = continuous
        self._frames: collections.deque[bytes] = collections.deque()
        self._sent = 0  # frames of words sent so far
        # (frames of words sent by then, its future, whether it tells when the words began or left)
        self._waiting: collections.deque[tuple[int, asyncio.Future[float], bool]] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dead: ConnectionError | None = None  # why sending failed, once it has

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def say(self, audio: bytes) -> tuple[asyncio.Future[float], asyncio.Future[float]]:
        loop = asyncio.get_running_loop()
        begun, said = loop.create_future(), loop.create_future()
        if self._dead is not None or not audio:  # nothing will ever send these words
            failure = self._dead or ValueError("no audio to say")
            begun.set_exception(failure)
            said.set_exception(failure)
            return begun, said
        queued = self._sent + len(self._frames)
        step = self._frame_bytes
        self._frames.extend(audio[offset : offset + step] for offset in range(0, len(audio), step))
        self._waiting.append((queued + 1, begun, True))
        self._waiting.append((self._sent + len(self._frames), said, False))
        self._wake.set()
        return begun, said

    def lateness_ms(self, audio: bytes, begun: float, said: float) -> float:
        """How much later than due the last frame of ``audio`` left, given ``say``'s two times."""
        frames = -(-len(audio) // self._frame_bytes)
        return (said - begun - frames * self._frame_s) * 1000

    async def _run(self) -> None:
        tick = time.monotonic()
        try:
            while True:
                if not self.continuous and not self._frames:
                    self._wake.clear()
                    await self._wake.wait()
                    tick = time.monotonic()  # the words start now, not on a silent line's clock
                tick += self._frame_s
                delay = tick - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                words = bool(self._frames)
                frame = self._frames.popleft() if words else self._silence
                if words:
                    self._sent += 1  # counted before the send: a say() meanwhile queues after it
                await self._send(frame)
                if words:
                    while self._waiting and self._waiting[0][0] <= self._sent:
                        _, future, begins = self._waiting.popleft()
                        if not future.done():
                            future.set_result(tick - self._frame_s if begins else time.monotonic())
        except Exception as exc:  # noqa: BLE001 - the socket closed: whoever waits on the line learns it
            self._dead = ConnectionError(f"the line went dead: {exc!r}")
            for _, future, _ in self._waiting:
                if not future.done():
                    future.set_exception(self._dead)
            self._waiting.clear()
