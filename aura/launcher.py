"""`make run`: the whole platform on one machine, as one supervised group.

Starts embedded PostgreSQL and Redis when DATABASE_URL / REDIS_URL are unset (data kept in
.data/dev, so the next run reuses it), migrates every schema, seeds the demo organization and a
staff account, then runs daphne, a Celery worker and Celery beat. A child that dies is restarted
with back-off; Ctrl-C or SIGTERM stops the group, then the embedded servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from aura.development import ROOT, use_development_environment

RESTART_BACKOFF_S = (1, 2, 5, 10, 30)


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, cwd=ROOT)
        self.started_at = time.monotonic()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _prepare() -> dict[str, str]:
    use_development_environment()

    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("setup_platform", verbosity=0)
    call_command("seed_demo")
    connections.close_all()
    return dict(os.environ)


def _banner(port: int) -> str:
    from django.conf import settings

    from aura.management.commands.seed_demo import demo_admin_email, demo_password, staff_username
    from voice.providers.registry import provider_mode_summary, speech_output_summary

    base = settings.AURA_BASE_DOMAIN
    return "\n".join(
        [
            "",
            "AURA is running. Stop it with Ctrl-C.",
            f"  Widget demo page      http://{base}:{port}/demo/",
            f"  Demo tenant admin     http://demo.{base}:{port}/admin/",
            f"                        login {demo_admin_email()} / {demo_password()}",
            f"  Platform staff admin  http://{base}:{port}/admin/",
            f"                        login {staff_username()} / {demo_password()}",
            f"  Health                http://{base}:{port}/healthz  ·  http://{base}:{port}/readyz",
            f"  Providers             {provider_mode_summary()}",
            f"  Speech output         {speech_output_summary()}",
            "",
        ]
    )


def main() -> int:
    port = int(os.environ.get("AURA_PORT", "8000"))
    bind = os.environ.get("AURA_BIND", "127.0.0.1")
    os.environ["AURA_PORT"] = str(port)
    _prepare()
    python = sys.executable
    children = [
        Child("web", [python, "-m", "aura.server", "-b", bind, "-p", str(port), "aura.asgi:application"]),
        Child("worker", [python, "-m", "celery", "-A", "aura", "worker", "--loglevel=INFO", "--concurrency=2"]),
        Child("beat", [python, "-m", "celery", "-A", "aura", "beat", "--loglevel=INFO"]),
    ]
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for child in children:
        child.start()
    print(_banner(port), flush=True)
    while not stopping:
        time.sleep(0.5)
        for child in children:
            code = child.process.poll() if child.process else None
            if code is None or stopping:
                continue
            if time.monotonic() - child.started_at > 60:
                child.restarts = 0
            delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
            print(f"[launcher] {child.name} exited with {code}; restarting in {delay} s", flush=True)
            time.sleep(delay)
            child.restarts += 1
            child.start()
    print("\n[launcher] stopping…", flush=True)
    for child in children:
        child.stop()
    for child in children:
        child.wait(15)
    print("[launcher] stopped; embedded servers shut down on exit.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
