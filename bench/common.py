"""What every benchmark shares: figures as p50/p95/max, and a fresh platform with one organization."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


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


def fresh_platform(name: str, **env: str) -> Any:
    """Embedded PostgreSQL and Redis under .data/bench-<name> (new each run unless DATABASE_URL is set),
    Django set up with ``env`` as defaults, the platform migrated, and the organization "bench" created."""
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


def simulated_latency_env(latency: dict[str, float]) -> dict[str, str]:
    """The server's simulated providers with fixed latencies (``stt_ms``, ``llm_first_token_ms``,
    ``llm_tokens_per_s``, ``tts_first_byte_ms``) and a tone for a voice."""
    return {
        "AURA_SIMULATED_STT_MS": str(latency["stt_ms"]),
        "AURA_SIMULATED_LLM_FIRST_TOKEN_MS": str(latency["llm_first_token_ms"]),
        "AURA_SIMULATED_LLM_TOKENS_PER_S": str(latency["llm_tokens_per_s"]),
        "AURA_SIMULATED_TTS_FIRST_BYTE_MS": str(latency["tts_first_byte_ms"]),
        "AURA_SIMULATED_TTS_VOICE": "tone",
        "LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def pinned_daphne(data_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """One daphne process (``aura.server``) pinned to one core, the caller (the clients), PostgreSQL and
    Redis moved to the others; yields (base URL, daphne's pid) once /healthz answers."""
    import psutil

    from aura.embedded_services import free_port

    port = free_port()
    server_env = dict(os.environ)
    server_env.update(env)
    server_env["AURA_PLATFORM_URL"] = f"http://localhost:{port}"
    cores = os.sched_getaffinity(0)
    server_core, client_cores = min(cores), (cores - {min(cores)}) or cores
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
    redis_port = os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if (str(data_dir) in cmdline and "postgres" in cmdline) or (
            "redis-server" in cmdline and redis_port in cmdline
        ):
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


def print_voice_figures(result: dict[str, Any]) -> None:
    """The voice benchmarks' figures (bench.voice, bench.phone), one per line."""
    for name in ("endpoint_delay_ms", "overhead_ms", "bargein_ms"):
        print(f"{name:>22}: {result[name]}")
    print(f"{'turns':>22}: {result['turns']}  stale chunks: {result['stale_audio_chunks']}  errors: {result['errors']}")
    for sample in result["error_samples"]:
        print(f"{'error':>22}: {sample}")
    print(
        f"{'server':>22}: {result['server_cpu_ms_per_session_s']} ms CPU per session-second, "
        f"{result['server_cpu_share_of_one_core']:.0%} of one core, {result['server_rss_mb']} MB RSS"
    )


class ServerUsage:
    """The server process's CPU time and peak memory over a load run (memory sampled once a second).

    ``async with ServerUsage(pid) as usage: …`` then ``usage.figures(sessions)``.
    """

    def __init__(self, pid: int) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self.rss_peak_mb = 0.0
        self.cpu_ms = 0.0
        self.elapsed_s = 0.0

    async def _sample(self) -> None:
        while True:
            self.rss_peak_mb = max(self.rss_peak_mb, self._process.memory_info().rss / 2**20)
            await asyncio.sleep(1)

    async def __aenter__(self) -> ServerUsage:
        self._cpu_before = sum(self._process.cpu_times()[:2])
        self._started = time.monotonic()
        self._sampler = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._sampler.cancel()
        self.elapsed_s = time.monotonic() - self._started
        self.cpu_ms = (sum(self._process.cpu_times()[:2]) - self._cpu_before) * 1000

    def figures(self, sessions: int) -> dict[str, float]:
        return {
            "server_cpu_ms_per_session_s": round(self.cpu_ms / (sessions * self.elapsed_s), 2),
            "server_cpu_share_of_one_core": round(self.cpu_ms / 1000 / self.elapsed_s, 3),
            "server_rss_mb": round(self.rss_peak_mb, 1),
        }
