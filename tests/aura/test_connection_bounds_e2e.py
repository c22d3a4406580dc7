"""A hostile burst against the real server (daphne, the production command) leaves its connections within
the configured bounds, and every tenant still answers (issue 20).

A few thousand requests at concurrency 30: no key, made-up ``sk_`` keys, a valid key's reads, the
tenants' admin login pages, ``POST /widget/session``. Then the server process's PostgreSQL backends
(``pg_stat_activity``, by the application name the process connects with) and Redis clients (its TCP
connections to Redis, checked against ``CLIENT LIST``) are counted: at most the configured bounds.
Functional, not timed: nothing here asserts how fast the server answered.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator

import aiohttp
import psutil
import pytest
import redis
from django.db import connection

from aura.embedded_services import free_port
from tenants.actions import do_create_api_key
from tests.processes import python_module, running, server_environment
from tests.servers import SIMULATED_LATENCY_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The bounds this server runs with (docs/deployment.md, "Connection budget").
DB_POOL_MAX_SIZE = 4
REDIS_MAX_CONNECTIONS = 6
CELERY_REDIS_MAX_CONNECTIONS = 2
REDIS_BOUND = 2 * REDIS_MAX_CONNECTIONS + 2 * CELERY_REDIS_MAX_CONNECTIONS
REQUESTS = 2010
CONCURRENCY = 30


def _status(url: str, host: str) -> int:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@pytest.fixture
def bounded_server(alpha) -> Iterator[tuple[int, psutil.Process, str]]:
    port = free_port()
    application_name = f"aura-flood-{port}"
    env = server_environment(
        AURA_PLATFORM_URL=f"http://localhost:{port}",
        PGAPPNAME=application_name,  # libpq's default application name: this process's backends carry it
        DB_POOL_MAX_SIZE=str(DB_POOL_MAX_SIZE),
        AURA_REDIS_MAX_CONNECTIONS=str(REDIS_MAX_CONNECTIONS),
        AURA_CELERY_REDIS_MAX_CONNECTIONS=str(CELERY_REDIS_MAX_CONNECTIONS),
        **SIMULATED_LATENCY_ENV,
    )
    command = python_module("aura.server", "-b", "127.0.0.1", "-p", str(port), "aura.asgi:application")
    ready = lambda: _status(f"http://127.0.0.1:{port}/healthz", "localhost") == 200  # noqa: E731
    with running(command, ready=ready, log_name="flood-daphne", env=env) as process:
        yield port, psutil.Process(process.pid), application_name


def _postgres_backends(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return int(cursor.fetchone()[0])


def _redis_clients(process: psutil.Process) -> int:
    """The process's TCP connections to Redis that Redis itself lists as clients."""
    url = os.environ["REDIS_URL"]
    client = redis.Redis.from_url(url)
    try:
        listed = {entry["addr"] for entry in client.client_list()}
    finally:
        client.close()
    redis_port = client.connection_pool.connection_kwargs["port"]
    ours = {
        f"{conn.laddr.ip}:{conn.laddr.port}"
        for conn in process.net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == redis_port and conn.status == psutil.CONN_ESTABLISHED
    }
    return len(ours & listed)


async def _flood(port: int, *, valid_key: str, widget_key: str, origin: str) -> Counter[str]:
    base = f"http://127.0.0.1:{port}"
    kinds = ["no_key", "bad_key", "bad_key", "valid_key", "admin_login", "widget_session"]
    outcomes: Counter[str] = Counter()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for index in range(REQUESTS):
        queue.put_nowait(kinds[index % len(kinds)])

    async def one(session: aiohttp.ClientSession, kind: str) -> int:
        if kind == "no_key":
            response = await session.get(f"{base}/api/v1/assistants/", headers={"Host": "localhost"})
        elif kind == "bad_key":
            made_up = f"sk_{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"  # well-formed: looked up
            headers = {"Host": "localhost", "Authorization": f"Bearer {made_up}"}
            response = await session.get(f"{base}/api/v1/assistants/", headers=headers)
        elif kind == "valid_key":
            headers = {"Host": "localhost", "Authorization": f"Bearer {valid_key}"}
            response = await session.get(f"{base}/api/v1/assistants/", headers=headers)
        elif kind == "admin_login":
            response = await session.get(f"{base}/admin/login/", headers={"Host": "alpha.localhost"})
        else:
            body = {"key": widget_key, "visitor_id": ""}
            headers = {"Host": "localhost", "Origin": origin}
            response = await session.post(f"{base}/widget/session", json=body, headers=headers)
        async with response:
            await response.read()
            if response.status == 429 and not response.headers.get("Retry-After", "").isdigit():
                return -429  # a refusal must say when to come back
            return response.status

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            kind = queue.get_nowait()
            try:
                status = await one(session, kind)
            except aiohttp.ClientError as exc:
                outcomes[f"{kind}:{type(exc).__name__}"] += 1
            else:
                outcomes[f"{kind}:{status}"] += 1

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    return outcomes


def test_a_burst_of_hostile_and_ordinary_requests_leaves_connections_within_the_bounds(
    bounded_server, alpha, beta
) -> None:
    port, process, application_name = bounded_server
    valid_key = do_create_api_key(
        alpha.organization, name="flood", scopes=["admin"], expires_at=None, created_by="test"
    ).secret

    started = time.monotonic()
    outcomes = asyncio.run(_flood(port, valid_key=valid_key, widget_key=alpha.widget_key.key, origin=alpha.origin))

    # Every kind was answered as it should be: refusals are 401 or 429, never a 5xx or a dropped connection.
    assert not [k for k in outcomes if k.endswith(("Error", ":500", ":502", ":503", ":0"))], outcomes
    assert outcomes["no_key:401"] == REQUESTS // 6, outcomes
    assert outcomes["bad_key:401"] + outcomes["bad_key:429"] == REQUESTS // 3, outcomes
    assert outcomes["valid_key:200"] == REQUESTS // 6, outcomes
    assert outcomes["admin_login:200"] == REQUESTS // 6, outcomes
    assert outcomes["widget_session:200"] == REQUESTS // 6, outcomes

    # Connections: at most the configured bounds (PostgreSQL: the pool; Redis: one sync pool and one event
    # loop's async pool on the cache database, and Celery's producer and result pools: docs/deployment.md).
    deadline = time.monotonic() + 3
    while True:
        backends, clients = _postgres_backends(application_name), _redis_clients(process)
        if (backends <= DB_POOL_MAX_SIZE and clients <= REDIS_BOUND) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    print(f"flood: {elapsed:.1f} s, {dict(outcomes)}; PostgreSQL backends {backends}, Redis clients {clients}")
    assert backends <= DB_POOL_MAX_SIZE, f"{backends} PostgreSQL backends, bound {DB_POOL_MAX_SIZE}"
    assert clients <= REDIS_BOUND, f"{clients} Redis clients, bound {REDIS_BOUND}"

    # And every tenant, and the platform, still answers.
    for host in ("localhost", "alpha.localhost", "beta.localhost"):
        assert _status(f"http://127.0.0.1:{port}/readyz", host) == 200, host
        assert _status(f"http://127.0.0.1:{port}/admin/login/", host) == 200, host
