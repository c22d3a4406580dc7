"""Real server processes for tests: a Celery worker and daphne, against the test database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def server_environment(**extra: str) -> dict[str, str]:
    """The environment of a child process: same Redis, the *test* database, test settings."""
    env = dict(os.environ)
    parts = urlsplit(os.environ["DATABASE_URL"])
    env["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + settings.DATABASES["default"]["NAME"]))
    env["DJANGO_SETTINGS_MODULE"] = "aura.settings.test"
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def log_dir() -> Path:
    """Where started processes log: one folder per pytest-xdist worker (each starts its own "daphne")."""
    path = ROOT / ".data" / "test" / "logs" / os.environ.get("PYTEST_XDIST_WORKER", "")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def running(
    args: list[str], *, ready: callable, log_name: str, env: dict[str, str] | None = None, timeout_s: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a process, wait until ``ready()`` is true, yield it, stop it (SIGTERM, then SIGKILL)."""
    log_path = log_dir() / f"{log_name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env or server_environment(), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not ready():
                if process.poll() is not None:
                    raise RuntimeError(f"{args[0]} exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} not ready after {timeout_s} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
