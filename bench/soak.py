"""Soak: the production server command and a Celery worker under minutes of mixed traffic, with faults.

    .venv/bin/python -m bench.soak --minutes 5 --json
    .venv/bin/python -m bench.soak --minutes 1 --no-faults --json

Embedded PostgreSQL and Redis under .data/bench-soak (new each run), or DATABASE_URL / REDIS_URL when
set. Several organizations (``--tenants``), each with an API key, a widget key and its assistant on the
simulated providers of bench.voice. Then ``python -m aura.server … aura.asgi:application`` with
production settings (AURA_ENV=production, DEBUG off, JSON logs; no TLS) and ``celery -A aura worker``,
and for ``--minutes``, all to loopback and bounded in rate, concurrency and time:

- a mix of HTTP requests at ``--rate`` a second, at most ``--concurrency`` in flight: anonymous and
  bad-key API requests and the tenant admin login page from another loopback address (127.0.0.2, another
  client), valid API reads, API writes (text conversations: start, then messages answered by the model),
  a tenant admin's logged-in page, and widget session tokens;
- ``--voice-sessions`` live voice sessions (tests/voice/client.py, as bench.voice): each speaks the speech
  fixtures in real time, waits for the whole reply and lets it play, again until the end. A session the
  server closes reconnects a second later with ``resume``, as the widget does;
- unless ``--no-faults``, four faults at evenly spaced times (each at its time, recovered or not):
  Redis restarted (embedded: ``DEBUG RESTART``, the server replaces itself with a fresh process on the
  same port, every connection and key gone; with REDIS_URL: every client connection killed), the web and
  worker processes' PostgreSQL backends terminated (pg_terminate_backend, from a session the bench opened
  before the traffic), PostgreSQL restarted (embedded: ``pg_ctl restart -m fast`` with pgserver's
  binaries; skipped with DATABASE_URL), and the Celery worker killed (SIGKILL to its process group) and
  started again a second later, as ``make run``'s supervisor would.

Prints figures, and with --json one JSON object as the last line:

requests: answers by status class per request kind ("no_answer": refused connection or 20 s timeout).
fault window: from a fault's injection until /readyz (polled every 100 ms) answers 200 again, plus
    ``--grace`` seconds; 60 s at most; none when /readyz did not answer 200 just before the injection
    (the fault cannot explain what was already failing). ``http_5xx_outside_fault_windows`` counts 5xx
    answers and no-answers of requests that overlap no window.
latency_ms: p50/p95/p99 per request kind; voice_reply: end of the visitor's speech → first reply audio
    (includes the assistant's 600 ms end-of-turn silence).
connections: the most PostgreSQL backends (pg_stat_activity, by application_name: soak-web, soak-worker)
    and Redis clients (CLIENT LIST; per process from the processes' own sockets, and those Redis closed
    that the process did not: ``_half_closed``) seen, sampled each second; also the most per 10 s.
faults: seconds until /readyz answered 200 after each injection (and until the new worker was ready).
voice: connections that lasted to the end ("continued"), that the server closed with a close code
    documented in docs/websocket-protocol.md (per code), or that failed (no reply within 30 s, an
    undocumented close code, no connection); resumes honoured or refused.
usage: the billing usage events the run's completed exchanges must have created (per conversation: one
    ``session``; a spoken exchange: audio and speech-to-text seconds, model tokens in and out, speech
    characters and seconds; the greeting: speech characters and seconds; an API message: model tokens)
    against the ``session:`` and ``turn:`` events stored for those conversations: missing, extra, and
    idempotency keys stored twice. Summaries and profiles (``model:`` events) are counted, not compared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import fresh_platform, simulated_latency_env, summary
from bench.voice import LATENCY, QUESTIONS, configure_organization

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data" / "bench-soak"
PROTOCOL_DOC = ROOT / "docs" / "websocket-protocol.md"
HOSTILE_ADDRESS = "127.0.0.2"  # anonymous and bad-key clients: another loopback address than the tenants'
# Relative weights of the HTTP mix.
MIX = {
    "anonymous": 3,
    "bad_key": 3,
    "api_read": 4,
    "api_write": 2,
    "admin_login_page": 1,
    "admin_page": 2,
    "widget_token": 2,
}
FAULTS = ("redis_restart", "postgres_terminate", "postgres_restart", "worker_kill")
READY_LIMIT_S = 60.0  # a fault's window ends here at the latest, recovered or not
REPLY_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 20.0
TEXT_MESSAGES_PER_CONVERSATION = 4
# The usage events one completed exchange creates (billing.actions.turn_events), by metric.
VISITOR_SPEECH = ("audio_in_seconds", "stt_seconds")
SPOKEN_REPLY = ("llm_input_tokens", "llm_output_tokens", "tts_characters", "audio_out_seconds")
GREETING = ("tts_characters", "audio_out_seconds")
TEXT_REPLY = ("llm_input_tokens", "llm_output_tokens")


# ============================================================ what a run records, and the figures
@dataclass
class Tenant:
    slug: str
    api_key: str
    widget_key: str
    origin: str
    admin_email: str
    admin_password: str
    admin_cookie: str = ""
    text_conversations: list[dict[str, Any]] = field(default_factory=list)  # id, messages, busy


@dataclass(frozen=True)
class Answer:
    kind: str
    started: float
    ended: float
    status: int | None  # None: no answer (connection refused, reset or timed out)


@dataclass
class Fault:
    name: str
    at: float
    detail: str = "injecting"
    injected: bool = False
    ready_before: bool = True
    ready_at: float | None = None
    unready_polls: int = 0
    last_unready: str = ""  # the last /readyz answer that was not 200
    worker_ready_at: float | None = None

    def window(self, grace_s: float) -> tuple[float, float]:
        """From the injection until readiness is back plus the grace (60 s at most). Nothing when it could
        not be injected, or when the server was not ready before it: then the fault explains no error."""
        if not (self.injected and self.ready_before):
            return self.at, self.at
        end = self.ready_at if self.ready_at is not None else self.at + READY_LIMIT_S
        return self.at, end + grace_s


@dataclass
class Run:
    started: float = field(default_factory=time.monotonic)
    answers: list[Answer] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    voice_reply_ms: list[float] = field(default_factory=list)
    voice: Counter[str] = field(default_factory=Counter)
    expected_usage: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    connections_max: Counter[str] = field(default_factory=Counter)  # "postgres_web", "redis_total", …
    connections_last: dict[str, int] = field(default_factory=dict)
    timeline: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def record(self, kind: str, started: float, status: int | None) -> None:
        self.answers.append(Answer(kind, started, time.monotonic(), status))

    def note_connections(self, counts: dict[str, int]) -> None:
        for name, count in counts.items():
            self.connections_max[name] = max(self.connections_max[name], count)
        self.connections_last.update(counts)
        self.timeline.append((time.monotonic(), counts))


def status_class(status: int | None) -> str:
    return "no_answer" if status is None else f"{status // 100}xx"


def overlaps(answer: Answer, windows: Iterable[tuple[float, float]]) -> bool:
    return any(answer.started <= end and answer.ended >= start for start, end in windows)


def documented_close_codes(path: Path = PROTOCOL_DOC) -> set[int]:
    """The close codes in the protocol's "Close codes" table."""
    section = path.read_text().split("## Close codes", 1)[1]
    return {int(code) for code in re.findall(r"^\| (\d{4}) \|", section, flags=re.MULTILINE)}


def compare_usage(expected: dict[str, Counter[str]], stored: dict[str, Counter[str]]) -> dict[str, Any]:
    """Per conversation and metric: events expected but not stored (missing), stored beyond those (extra)."""
    missing: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    for conversation in expected.keys() | stored.keys():
        want, have = expected.get(conversation, Counter()), stored.get(conversation, Counter())
        for metric in want.keys() | have.keys():
            missing[metric] += max(0, want[metric] - have[metric])
            extra[metric] += max(0, have[metric] - want[metric])
    return {
        "expected": sum(sum(c.values()) for c in expected.values()),
        "stored": sum(sum(c.values()) for c in stored.values()),
        "missing": sum(missing.values()),
        "extra": sum(extra.values()),
        "missing_by_metric": dict(+missing),
        "extra_by_metric": dict(+extra),
        "conversations": len(expected),
    }


def figures(run: Run, grace_s: float, usage: dict[str, Any]) -> dict[str, Any]:
    windows = [fault.window(grace_s) for fault in run.faults]
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    latency: dict[str, list[float]] = defaultdict(list)
    outside: Counter[str] = Counter()
    samples: list[str] = []
    for answer in run.answers:
        by_kind[answer.kind][status_class(answer.status)] += 1
        if answer.status is not None:
            latency[answer.kind].append((answer.ended - answer.started) * 1000)
        if (answer.status is None or answer.status >= 500) and not overlaps(answer, windows):
            outside[answer.kind] += 1
            if len(samples) < 5:
                samples.append(f"{answer.kind} {answer.status} at {answer.started - run.started:.1f} s")
    latency["voice_reply"] = run.voice_reply_ms
    buckets: dict[int, Counter[str]] = defaultdict(Counter)
    for at, counts in run.timeline:  # the most seen in each 10 s of the run: flat or growing
        bucket = buckets[int((at - run.started) // 10) * 10]
        for name, count in counts.items():
            bucket[name] = max(bucket[name], count)
    return {
        "requests": {kind: dict(sorted(counts.items())) for kind, counts in sorted(by_kind.items())},
        "requests_total": len(run.answers),
        "http_5xx_outside_fault_windows": sum(outside.values()),
        "http_5xx_outside_fault_windows_by_kind": dict(outside),
        "http_5xx_outside_samples": samples,
        "latency_ms": {kind: summary(values, p99=True) for kind, values in sorted(latency.items())},
        "max_connections": dict(sorted(run.connections_max.items())),
        "connections_at_end": dict(sorted(run.connections_last.items())),
        "max_connections_per_10s": {str(start): dict(sorted(c.items())) for start, c in sorted(buckets.items())},
        "faults": [
            {
                "fault": fault.name,
                "at_s": round(fault.at - run.started, 1),
                "detail": fault.detail,
                "ready_before": fault.ready_before,
                "ready_after_s": None if fault.ready_at is None else round(fault.ready_at - fault.at, 2),
                "readyz_not_ready_polls": fault.unready_polls,
                "readyz_last_not_ready": fault.last_unready,
                **(
                    {"worker_ready_after_s": round(fault.worker_ready_at - fault.at, 2)}
                    if fault.worker_ready_at is not None
                    else {}
                ),
                "window_s": [round(edge - run.started, 1) for edge in fault.window(grace_s)],
                "http_5xx_in_window": sum(
                    1
                    for a in run.answers
                    if (a.status is None or a.status >= 500) and overlaps(a, [fault.window(grace_s)])
                ),
            }
            for fault in run.faults
        ],
        "voice_sessions": {
            "continued": run.voice["continued"],
            "ended_with_documented_code": sum(n for key, n in run.voice.items() if key.startswith("ended:")),
            "failed": sum(n for key, n in run.voice.items() if key.startswith("failed:")),
        },
        "voice": dict(sorted(run.voice.items())),
        "usage": usage,
    }


# ============================================================ the platform: data, processes, faults
def prepare(tenants: int) -> list[Tenant]:
    """The organizations, each with an API key, its widget key and its admin; the first is bench.common's."""
    password = "bench-pass-123"
    organization = fresh_platform("soak")
    from aura.workflows.organizations import open_organization
    from tenants.actions import NewOrganization, do_create_api_key

    organizations = [(organization, "bench@bench.example")]
    for index in range(1, tenants):
        email = f"admin{index}@soak.example"
        new = NewOrganization(name=f"Soak {index}", slug=f"soak-{index}", admin_email=email, admin_password=password)
        organizations.append((open_organization(new), email))
    prepared = []
    for organization, email in organizations:
        origin = f"http://{organization.slug}.localhost"
        widget_key = configure_organization(organization, origin)
        api_key = do_create_api_key(organization, name="soak", scopes=["write"]).secret
        prepared.append(Tenant(organization.slug, api_key, widget_key, origin, email, password))
    from django.db import connections

    connections.close_all()
    return prepared


def app_environment(port: int, name: str) -> dict[str, str]:
    """Production settings (no TLS) with the bench's simulated providers; ``PGAPPNAME`` names the process's
    PostgreSQL connections. Every simulated visitor shares 127.0.0.1, so the per-IP session limit is lifted."""
    from django.conf import settings

    from core.crypto import development_key

    return {
        **os.environ,
        **simulated_latency_env(LATENCY),
        "AURA_ENV": "production",
        "DEBUG": "0",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "SECRET_KEY": settings.SECRET_KEY,
        "AURA_ENCRYPTION_KEYS": development_key(settings.SECRET_KEY),
        "AURA_PLATFORM_URL": f"http://localhost:{port}",
        "AURA_WIDGET_SESSIONS_PER_IP_PER_MINUTE": "100000",
        "AURA_SHUTDOWN_GRACE_S": "5",
        "PGAPPNAME": f"soak-{name}",
        "PYTHONUNBUFFERED": "1",
    }


class Platform:
    """The web and worker processes this bench runs, and the faults it injects into them and their servers."""

    def __init__(self, port: int, *, external_database: bool, external_redis: bool) -> None:
        self.port = port
        self.external_database = external_database
        self.external_redis = external_redis
        server = ["-m", "aura.server", "-b", "127.0.0.1", "-p", str(port), "aura.asgi:application"]
        self.web = self._start("web", [sys.executable, *server])
        self.worker = self._start_worker()
        self.worker_starts = 1
        self.database: Any = None
        self._database()

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (DATA_DIR / f"{name}.log").open("ab")
        # Own session: a fault can kill the whole process group (a worker and its pool) by the leader's id.
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=app_environment(self.port, name),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _start_worker(self) -> subprocess.Popen[bytes]:
        self.worker_log_offset = (DATA_DIR / "worker.log").stat().st_size if (DATA_DIR / "worker.log").exists() else 0
        return self._start("worker", [sys.executable, "-m", "celery", "-A", "aura", "worker", "--loglevel=INFO"])

    def wait_worker_ready(self, deadline: float) -> bool:
        """Wait until the worker started last says it is ready (its log), or the deadline."""
        while time.monotonic() < deadline:
            with (DATA_DIR / "worker.log").open("rb") as log:
                log.seek(self.worker_log_offset)
                if b" ready." in log.read():
                    return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (self.web, self.worker):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if self.database is not None:
            self.database.close()

    def inject(self, name: str) -> str:
        """Run one fault; returns what was done."""
        return getattr(self, f"_fault_{name}")()

    def _fault_redis_restart(self) -> str:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(os.environ["REDIS_URL"], retry=Retry(NoBackoff(), 0))  # sent once
        if self.external_redis:
            killed = sum(client.client_kill_filter(_type=kind, skipme=True) for kind in ("normal", "pubsub"))
            return f"REDIS_URL is not ours to restart: its {killed} client connections killed"
        # The embedded redis-server replaces itself with a fresh one (same pid, port and arguments, so
        # aura.embedded_services still stops it at exit): every connection and key is gone.
        with contextlib.suppress(redis.ConnectionError):
            client.execute_command("DEBUG", "RESTART")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    break
            time.sleep(0.02)
        return "redis-server restarted (DEBUG RESTART: a new process image, no data kept)"

    def _fault_postgres_terminate(self) -> str:
        (count,) = (
            self._database()
            .execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name IN ('soak-web', 'soak-worker')"
            )
            .fetchone()
        )
        return f"pg_terminate_backend: {count} backends of the web and worker processes"

    def _database(self) -> Any:
        """The bench's own PostgreSQL session, opened before the traffic (a server that leaks connections
        leaves no slot for a new one) and opened again after a restart."""
        import psycopg

        if self.database is not None:
            try:
                self.database.execute("SELECT 1")
                return self.database
            except psycopg.Error:
                self.database.close()
        self.database = psycopg.connect(
            os.environ["DATABASE_URL"], autocommit=True, application_name="soak-faults", connect_timeout=5
        )
        return self.database

    def _fault_postgres_restart(self) -> str:
        if self.external_database:
            return "skipped: DATABASE_URL is not ours to restart"
        import pgserver

        server = pgserver.get_server(DATA_DIR / "postgres", cleanup_mode="stop")
        pgserver.pg_ctl(
            ["-w", "-m", "fast", "-l", str(server.log), "restart"],
            pgdata=server.pgdata,
            user=server.system_user,
            timeout=60,
        )
        server.ensure_postgres_running()  # pgserver follows the new postmaster, and stops it at exit
        return "pg_ctl restart -m fast"

    def _fault_worker_kill(self) -> str:
        from aura.launcher import RESTART_BACKOFF_S

        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(10)
        time.sleep(RESTART_BACKOFF_S[0])  # what `make run`'s supervisor waits before a restart
        self.worker = self._start_worker()
        self.worker_starts += 1
        return f"celery worker and its pool killed (SIGKILL), started again after {RESTART_BACKOFF_S[0]} s"

    def redis_sockets(self) -> dict[str, int]:
        """Sockets to Redis held by the web process and by the worker with its pool: open ones, and ones
        Redis has closed that the process never closed (``…_half_closed``: a restart's leftovers)."""
        import psutil

        port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
        counts: Counter[str] = Counter()
        for name, leader in (("web", self.web), ("worker", self.worker)):
            counts[f"redis_{name}"] = counts[f"redis_{name}_half_closed"] = 0
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(leader.pid)
                for process in (root, *root.children(recursive=True)):
                    with contextlib.suppress(psutil.Error):
                        for link in process.net_connections("tcp"):
                            if link.raddr and link.raddr.port == port:
                                established = link.status == psutil.CONN_ESTABLISHED
                                counts[f"redis_{name}" if established else f"redis_{name}_half_closed"] += 1
        return dict(counts)


def sample_connections(run: Run, platform: Platform, stop: threading.Event) -> None:
    """Once a second: PostgreSQL backends by process and Redis clients, while the run lasts (a thread)."""
    import psycopg
    import redis

    database = None
    broker = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)
    while not stop.wait(1.0):
        counts: dict[str, int] = {}
        try:
            database = database or psycopg.connect(
                os.environ["DATABASE_URL"], autocommit=True, application_name="soak-sampler", connect_timeout=2
            )
            rows = database.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
            ).fetchall()
            by_name = dict(rows)
            counts |= {
                "postgres_web": by_name.get("soak-web", 0),
                "postgres_worker": by_name.get("soak-worker", 0),
                "postgres_total": sum(by_name.values()),
            }
        except psycopg.Error:
            with contextlib.suppress(Exception):
                database.close()  # type: ignore[union-attr]
            database = None
        with contextlib.suppress(redis.RedisError):
            counts["redis_total"] = len(broker.client_list()) - 1  # not this sampler
        counts |= platform.redis_sockets()
        run.note_connections(counts)
    if database is not None:
        database.close()


# ============================================================ the traffic
class Traffic:
    """The run's clients: HTTP through aiohttp, voice through tests/voice/client.py."""

    def __init__(self, run: Run, port: int, tenants: list[Tenant], until: float, documented: set[int]) -> None:
        import aiohttp

        self.run = run
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.tenants = tenants
        self.until = until
        self.documented = documented
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        self.legit = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0))
        # Outsiders: their own address, a new connection for each request.
        self.hostile = aiohttp.ClientSession(
            timeout=timeout,
            connector=aiohttp.TCPConnector(local_addr=(HOSTILE_ADDRESS, 0), force_close=True, limit=0),
        )

    async def close(self) -> None:
        await self.legit.close()
        await self.hostile.close()

    def host(self, tenant: Tenant | None = None) -> str:
        return f"{tenant.slug}.localhost:{self.port}" if tenant else f"localhost:{self.port}"

    async def call(
        self,
        kind: str | None,
        method: str,
        path: str,
        *,
        host: str | None = None,
        hostile: bool = False,
        headers: dict[str, str] | None = None,
        **body: Any,
    ) -> tuple[int | None, bytes, dict[str, str]]:
        """One request; recorded under ``kind`` (None: set-up, not recorded). Returns status, body, cookies."""
        import aiohttp

        session = self.hostile if hostile else self.legit
        started, status, content, cookies = time.monotonic(), None, b"", {}
        try:
            async with session.request(
                method,
                self.url + path,
                headers={"Host": host or self.host(), **(headers or {})},
                allow_redirects=False,
                **body,
            ) as response:
                content = await response.read()
                status = response.status
                cookies = {name: morsel.value for name, morsel in response.cookies.items()}
        except (aiohttp.ClientError, TimeoutError):
            pass
        if kind:
            self.run.record(kind, started, status)
        return status, content, cookies

    async def readyz(self) -> tuple[int | None, str]:
        status, body, _ = await self.call(None, "GET", "/readyz")
        return status, body.decode(errors="replace")

    # ---------------------------------------------------------------- set-up
    async def log_in(self, tenant: Tenant) -> None:
        """The tenant admin's session cookie, through the login form (with its CSRF token)."""
        host = self.host(tenant)
        status, page, cookies = await self.call(None, "GET", "/admin/login/", host=host)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or not token:
            raise RuntimeError(f"{tenant.slug}: admin login page answered {status}")
        status, _, cookies = await self.call(
            None,
            "POST",
            "/admin/login/?next=/admin/",
            host=host,
            headers={"Cookie": f"csrftoken={cookies['csrftoken']}"},
            data={
                "csrfmiddlewaretoken": token.group(1).decode(),
                "username": tenant.admin_email,
                "password": tenant.admin_password,
                "next": "/admin/",
            },
        )
        if status != 302 or "sessionid" not in cookies:
            raise RuntimeError(f"{tenant.slug}: admin login answered {status}")
        tenant.admin_cookie = f"sessionid={cookies['sessionid']}"

    # ---------------------------------------------------------------- the HTTP mix
    async def mix(self, rate: float, concurrency: int) -> None:
        """``rate`` requests a second drawn from MIX, at most ``concurrency`` in flight, until the end."""
        slots = asyncio.Semaphore(concurrency)
        pending: set[asyncio.Task[None]] = set()
        kinds, weights = list(MIX), list(MIX.values())
        next_at = time.monotonic()
        while next_at < self.until:
            await slots.acquire()  # a stalled server slows the mix down instead of piling requests up
            task = asyncio.create_task(getattr(self, f"_{random.choices(kinds, weights)[0]}")())
            task.add_done_callback(lambda done: (slots.release(), pending.discard(done)))
            pending.add(task)
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*pending)

    def _bearer(self, tenant: Tenant) -> dict[str, str]:
        return {"Authorization": f"Bearer {tenant.api_key}"}

    async def _anonymous(self) -> None:
        await self.call("anonymous", "GET", "/api/v1/assistants/", hostile=True)

    async def _bad_key(self) -> None:
        from tenants.models import API_KEY_PREFIX_LENGTH

        prefix = secrets.token_hex(API_KEY_PREFIX_LENGTH)[:API_KEY_PREFIX_LENGTH]
        made_up = {"Authorization": f"Bearer sk_{prefix}_{secrets.token_urlsafe(32)}"}
        await self.call("bad_key", "GET", "/api/v1/assistants/", hostile=True, headers=made_up)

    async def _api_read(self) -> None:
        tenant = random.choice(self.tenants)
        path = random.choice(("/api/v1/assistants/", "/api/v1/conversations/"))
        await self.call("api_read", "GET", path, headers=self._bearer(tenant))

    async def _api_write(self) -> None:
        """A message in one of the tenant's open text conversations, or a new conversation."""
        tenant = random.choice(self.tenants)
        conversation = next(
            (c for c in tenant.text_conversations if not c["busy"] and c["messages"] < TEXT_MESSAGES_PER_CONVERSATION),
            None,
        )
        if conversation is None:
            status, body, _ = await self.call(
                "api_text_start", "POST", "/api/v1/conversations/text/", headers=self._bearer(tenant), json={}
            )
            if status == 201:
                conversation_id = json.loads(body)["id"]
                tenant.text_conversations.append({"id": conversation_id, "messages": 0, "busy": False})
                self.run.expected_usage[conversation_id]["session"] = 1
            return
        conversation["busy"] = True
        status, body, _ = await self.call(
            "api_text_message",
            "POST",
            f"/api/v1/conversations/{conversation['id']}/messages/",
            headers=self._bearer(tenant),
            json={"text": "What are your opening hours?"},
        )
        conversation["messages"] += 1
        conversation["busy"] = False
        if status == 200 and json.loads(body).get("status") == "completed":
            self.run.expected_usage[conversation["id"]].update(TEXT_REPLY)

    async def _admin_login_page(self) -> None:
        tenant = random.choice(self.tenants)
        await self.call("admin_login_page", "GET", "/admin/login/", host=self.host(tenant), hostile=True)

    async def _admin_page(self) -> None:
        tenant = random.choice(self.tenants)
        await self.call("admin_page", "GET", "/admin/", host=self.host(tenant), headers={"Cookie": tenant.admin_cookie})

    async def widget_token(self, kind: str, tenant: Tenant, **fields: str) -> dict | None:
        status, body, _ = await self.call(
            kind,
            "POST",
            "/widget/session",
            headers={"Origin": tenant.origin},
            json={"key": tenant.widget_key, **fields},
        )
        return json.loads(body) if status == 200 else None

    async def _widget_token(self) -> None:
        await self.widget_token("widget_token", random.choice(self.tenants), visitor_id=f"page-{secrets.token_hex(4)}")

    # ---------------------------------------------------------------- voice
    async def visitor(self, index: int, ramp_s: float, wavs: dict[str, tuple[bytes, int]]) -> None:
        """One voice visitor for the whole run: a session, and after the server closes it, a resumed one."""
        tenant = self.tenants[index % len(self.tenants)]
        await asyncio.sleep(random.random() * ramp_s)  # visitors arrive over the ramp
        # What the widget keeps between connections: who the visitor is, and the conversation to resume
        # (with its resume token and the platform-minted visitor token, where the server gives them).
        visitor: dict[str, str] = {"visitor_id": f"soak-{index}"}
        resume: dict[str, str] = {}
        connected, backoff_s = False, 1.0
        while time.monotonic() < self.until - 5:
            token = await self.widget_token("voice_token", tenant, **visitor, **resume)
            if token is None:
                await asyncio.sleep(backoff_s)  # the widget retries, backing off
                backoff_s = min(backoff_s * 2, 8.0)
                continue
            backoff_s = 1.0
            if resume:
                self.run.voice["resumed" if token.get("resumed") else "resume_refused"] += 1
            if "visitor_token" in token:
                visitor["visitor_token"] = token["visitor_token"]
            if not token.get("resumed"):
                resume = {"resume": token["conversation_id"]}
                if "resume_token" in token:
                    resume["resume_token"] = token["resume_token"]
            connected = True
            outcome = await self.session(index, token["ws_url"], tenant.origin, wavs)
            self.run.voice[outcome] += 1
            if outcome == "continued":
                return
            await asyncio.sleep(1)  # the widget reconnects a moment later
        if not connected:
            self.run.voice["visitors_never_connected"] += 1

    async def session(self, index: int, ws_url: str, origin: str, wavs: dict[str, tuple[bytes, int]]) -> str:
        """One WebSocket connection, talked over until the end of the run; returns how it ended."""
        from tests.voice.client import VoiceClient, silence

        self.run.voice["connections"] += 1
        try:
            client = await VoiceClient.connect(ws_url, origin)
        except Exception:  # noqa: BLE001 - any failure to connect is a failed session, counted
            return "failed:connect"
        try:
            created = await client.start(16000)
            usage = self.run.expected_usage[created["conversation_id"]]
            usage["session"] = 1
            reply_id = 0
            if created.get("greeting") and not created.get("resumed"):
                reply_id = 1
                if (await client.wait_for("response.done", response_id=1, timeout=REPLY_TIMEOUT_S))["status"] == (
                    "completed"
                ):
                    usage.update(GREETING)
            turn = 0
            while time.monotonic() < self.until:
                turn += 1
                pcm, rate = wavs[QUESTIONS[(index + turn) % len(QUESTIONS)]]
                spoken = await client.stream(pcm + silence(400), rate, frame_ms=40) - 0.4
                reply_id += 1
                done = await client.wait_for("response.done", response_id=reply_id, timeout=REPLY_TIMEOUT_S)
                first_audio = client.audio.get(reply_id, [(None, 0)])[0][0]
                if first_audio is not None:
                    self.run.voice_reply_ms.append((first_audio - spoken) * 1000)
                if done["status"] == "completed":
                    usage.update(VISITOR_SPEECH + SPOKEN_REPLY)
                    self.run.voice["exchanges"] += 1
                # Let the reply play to its end before the next question, like a polite visitor.
                playing_until = (first_audio or time.monotonic()) + (done["metrics"].get("audio_ms") or 0) / 1000
                await asyncio.sleep(max(0.0, playing_until - time.monotonic()) + 0.3)
            await client.send({"type": "session.end"})
            await client.wait_closed(10)
            return "continued" if client.close_code == 1000 else self._closed(client.close_code)
        except Exception:  # noqa: BLE001 - a closed socket or a missing reply ends this session, counted
            with contextlib.suppress(Exception):
                await client.wait_closed(2)
            if client.close_code is None:
                return "failed:no_reply"
            return self._closed(client.close_code)
        finally:
            if client.close_code is None:
                with contextlib.suppress(Exception):
                    await client.close()

    def _closed(self, code: int | None) -> str:
        return f"ended:{code}" if code in self.documented else f"failed:close_{code}"


# ============================================================ the run
async def inject_faults(run: Run, traffic: Traffic, platform: Platform, names: tuple[str, ...], seconds: float) -> None:
    """Each fault at its time, whether or not the one before has recovered."""
    injected = []
    for number, name in enumerate(names, start=1):
        await asyncio.sleep(max(0.0, run.started + seconds * number / (len(names) + 1) - time.monotonic()))
        injected.append(asyncio.create_task(inject_fault(run, traffic, platform, name)))
    await asyncio.gather(*injected)


async def inject_fault(run: Run, traffic: Traffic, platform: Platform, name: str) -> None:
    """One fault; then /readyz every 100 ms until it answers 200 after the injection ended (60 s at most)."""
    fault = Fault(name, at=time.monotonic(), ready_before=(await traffic.readyz())[0] == 200)
    run.faults.append(fault)
    injection = asyncio.create_task(asyncio.to_thread(platform.inject, name))
    while time.monotonic() < fault.at + READY_LIMIT_S:
        status, body = await traffic.readyz()
        if status == 200 and injection.done():
            fault.ready_at = time.monotonic()
            break
        if status != 200:
            fault.unready_polls += 1
            fault.last_unready = f"{status} {body[:300]}"
        await asyncio.sleep(0.1)
    try:
        fault.detail, fault.injected = await injection, True
    except Exception as exc:  # noqa: BLE001 - a fault that could not be injected is reported, not fatal
        fault.detail = f"injection failed: {type(exc).__name__}: {exc}"[:300]
    if name == "worker_kill" and await asyncio.to_thread(platform.wait_worker_ready, fault.at + READY_LIMIT_S):
        fault.worker_ready_at = time.monotonic()


async def soak(args: argparse.Namespace, tenants: list[Tenant], platform: Platform) -> Run:
    from tests.voice.client import read_wav

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(16))
    seconds = args.minutes * 60
    run = Run()
    traffic = Traffic(run, platform.port, tenants, run.started + seconds, documented_close_codes())
    try:
        for tenant in tenants:
            await traffic.log_in(tenant)
        run.started = time.monotonic()
        traffic.until = run.started + seconds
        wavs = {name: read_wav(name) for name in QUESTIONS}
        stop = threading.Event()
        sampler = threading.Thread(target=sample_connections, args=(run, platform, stop), daemon=True)
        sampler.start()
        work = [
            traffic.mix(args.rate, args.concurrency),
            *(traffic.visitor(i, min(10.0, seconds / 6), wavs) for i in range(args.voice_sessions)),
        ]
        if not args.no_faults:
            work.append(inject_faults(run, traffic, platform, FAULTS, seconds))
        # Bounded: a visitor finishes its exchange after the end, at most a reply's timeout later.
        tasks = [asyncio.ensure_future(w) for w in work]
        _, late = await asyncio.wait(tasks, timeout=seconds + READY_LIMIT_S + 2 * REPLY_TIMEOUT_S)
        for task in late:
            task.cancel()
        run.voice["cancelled_at_end"] += len(late)
        stop.set()
        sampler.join(5)
    finally:
        await traffic.close()
    return run


def stored_usage(conversations: Iterable[str]) -> tuple[dict[str, Counter[str]], dict[str, int]]:
    """The usage events stored for these conversations, per conversation and metric (turns and sessions),
    the memory events (summaries, profiles) and the idempotency keys stored more than once."""
    from django.db import connections
    from django.db.models import Count

    from billing.models import UsageEvent

    connections.close_all()  # this process's connection may have been cut by a fault
    stored: dict[str, Counter[str]] = defaultdict(Counter)
    memory = 0
    for conversation, metric, key in UsageEvent.objects.filter(conversation_id__in=list(conversations)).values_list(
        "conversation_id", "metric", "idempotency_key"
    ):
        if key.startswith(("turn:", "session:")):
            stored[str(conversation)][metric] += 1
        else:
            memory += 1
    twice = UsageEvent.objects.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1).count()
    return stored, {"memory_events_stored": memory, "idempotency_keys_stored_twice": twice}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--voice-sessions", type=int, default=50)
    parser.add_argument("--rate", type=float, default=15.0, help="HTTP requests a second (the mix)")
    parser.add_argument("--concurrency", type=int, default=30, help="HTTP requests in flight at most")
    parser.add_argument("--grace", type=float, default=2.0, help="seconds a fault window lasts after readiness")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    external = {"database": "DATABASE_URL" in os.environ, "redis": "REDIS_URL" in os.environ}
    tenants = prepare(args.tenants)
    from aura.embedded_services import free_port
    from tests.servers import answers_200

    port = free_port()
    platform = Platform(port, external_database=external["database"], external_redis=external["redis"])
    try:
        deadline = time.monotonic() + 60
        while not answers_200(f"http://127.0.0.1:{port}/readyz"):
            if time.monotonic() > deadline or platform.web.poll() is not None:
                raise RuntimeError(f"the server did not get ready; see {DATA_DIR / 'web.log'}")
            time.sleep(0.2)
        run = asyncio.run(soak(args, tenants, platform))
        time.sleep(3)  # the last turns and sessions are being stored
        stored, checks = stored_usage(run.expected_usage)
        result = {
            "minutes": args.minutes,
            "tenants": args.tenants,
            "voice_visitors": args.voice_sessions,
            "rate_per_s": args.rate,
            "faults_injected": not args.no_faults,
            "grace_s": args.grace,
            **figures(run, args.grace, {**compare_usage(run.expected_usage, stored), **checks}),
            "web_exit_code": platform.web.poll(),
            "worker_starts": platform.worker_starts,
        }
    finally:
        platform.stop()
    print_figures(result)
    if args.json:
        print(json.dumps(result))
    return 0


def print_figures(result: dict[str, Any]) -> None:
    for kind, counts in result["requests"].items():
        latency = result["latency_ms"].get(kind, {})
        print(f"{kind:>18}: {counts}  p50/p95/p99 {latency.get('p50')}/{latency.get('p95')}/{latency.get('p99')} ms")
    print(f"{'5xx outside faults':>18}: {result['http_5xx_outside_fault_windows']}")
    print(f"{'max connections':>18}: {result['max_connections']}")
    for fault in result["faults"]:
        print(f"{fault['fault']:>18}: ready after {fault['ready_after_s']} s; {fault['detail']}")
    print(f"{'voice sessions':>18}: {result['voice_sessions']}  {result['voice']}")
    print(f"{'usage':>18}: {result['usage']}")


if __name__ == "__main__":
    sys.exit(main())
