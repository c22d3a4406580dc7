"""The production topology without Docker: nginx (the project's configuration) in front of two daphne
processes and a Celery worker, on one PostgreSQL and one Redis, on loopback.

A voice session goes through nginx; the daphne holding it is killed (SIGKILL) mid-session and the
widget protocol's reconnect resumes the same conversation on the other one; that one is then shut
down gracefully (SIGTERM: 4012, reconnect) and the conversation resumes on a restarted process.
Metrics are scraped from both daphne processes (one shared multiprocess directory) and the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from aura.embedded_services import free_port
from conversations.models import Conversation, Turn
from tests.conftest import require_tool
from tests.processes import ROOT, log_dir, python_module, running, server_environment
from tests.servers import SIMULATED_LATENCY_ENV
from tests.voice.client import VoiceClient, request_session

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _get(url: str, host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


@dataclass
class Topology:
    nginx_port: int
    daphne_ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]]
    worker_metrics_port: int
    stack: contextlib.ExitStack
    env: dict[str, str]

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.nginx_port}"

    def start_daphne(self, name: str) -> None:
        port = self.daphne_ports[name]
        command = python_module("aura.server", "-b", "127.0.0.1", "-p", str(port), "aura.asgi:application")
        self.processes[name] = self.stack.enter_context(
            running(
                command,
                ready=lambda: _get(f"http://127.0.0.1:{port}/healthz")[0] == 200,
                log_name=f"topology-daphne-{name}",
                env=self.env,
            )
        )

    def holder(self) -> str:
        """Which daphne accepted the last voice WebSocket (its access log says so)."""
        counts = {
            name: (log_dir() / f"topology-daphne-{name}.log").read_text().count("WSCONNECT /ws/voice/")
            for name in self.daphne_ports
            if self.processes[name].poll() is None
        }
        return max(counts, key=lambda name: counts[name])


@pytest.fixture
def topology(tmp_path: Path, alpha) -> Iterator[Topology]:
    nginx = require_tool("nginx", "fronts the daphne processes like production")
    nginx_dir = tmp_path / "nginx"
    shutil.copytree(ROOT / "deploy" / "nginx", nginx_dir)
    ports = {"a": free_port(), "b": free_port()}
    nginx_port, worker_metrics_port = free_port(), free_port()
    (nginx_dir / "upstream.conf").write_text(
        "upstream aura_web {\n    least_conn;\n"
        + "".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;\n" for port in ports.values())
        + "    keepalive 8;\n}\n"
    )
    (nginx_dir / "listen.conf").write_text(f"listen 127.0.0.1:{nginx_port};\n")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = server_environment(
        AURA_PLATFORM_URL=f"http://localhost:{nginx_port}",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        AURA_SHUTDOWN_GRACE_S="8",
        AURA_WORKER_METRICS_PORT=str(worker_metrics_port),
        **SIMULATED_LATENCY_ENV,
    )
    with contextlib.ExitStack() as stack:
        topology = Topology(nginx_port, ports, {}, worker_metrics_port, stack, env)
        topology.start_daphne("a")
        topology.start_daphne("b")
        worker = python_module(
            "celery",
            "-A",
            "aura",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--hostname=topology@%h",
        )
        stack.enter_context(
            running(
                worker,
                ready=lambda: _get(f"http://127.0.0.1:{worker_metrics_port}/")[0] == 200,
                log_name="topology-worker",
                env=env,
            )
        )
        nginx_command = [
            nginx,
            "-p",
            f"{nginx_dir}/",
            "-c",
            str(nginx_dir / "nginx.conf"),
            "-e",
            "stderr",
            "-g",
            "daemon off;",
        ]
        stack.enter_context(
            running(
                nginx_command,
                ready=lambda: _get(f"http://localhost:{nginx_port}/healthz")[0] == 200,
                log_name="topology-nginx",
                env=env,
            )
        )
        yield topology


async def _open(topology: Topology, tenant, resume: dict | None = None) -> tuple[VoiceClient, dict, dict]:
    """A widget session; ``resume``: the answer of the session that began the conversation (the widget keeps
    its conversation id, visitor token and resume token)."""
    key = await sync_to_async(lambda: tenant.widget_key.key)()
    credentials = (
        {
            "resume": resume["conversation_id"],
            "visitor_token": resume["visitor_token"],
            "resume_token": resume["resume_token"],
        }
        if resume
        else {}
    )
    deadline = time.monotonic() + 20
    while True:  # like the widget: retry with back-off while the platform has no live process
        status, body = await asyncio.to_thread(request_session, topology.base_url, key, tenant.origin, **credentials)
        if status == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert status == 200, body
    client = await VoiceClient.connect(body["ws_url"], tenant.origin)
    created = await client.start(16000, text_only=True)
    return client, created, body


async def _ask(client: VoiceClient, text: str) -> dict:
    """The reply to ``text``: the first response started after its transcript (not a greeting)."""
    await client.send({"type": "input.text", "text": text})
    for _ in range(100):
        events = [received.event for received in client.events]
        heard = next((i for i, e in enumerate(events) if e["type"] == "transcript.final" and e["text"] == text), None)
        if heard is not None:
            started = next((e for e in events[heard:] if e["type"] == "response.started"), None)
            done = started and next(
                (e for e in events if e["type"] == "response.done" and e["response_id"] == started["response_id"]), None
            )
            if done:
                return done
        await asyncio.sleep(0.1)
    raise AssertionError(f"no reply to {text!r}: {client.types()}")


def _conversation(tenant, conversation_id: str) -> tuple[Conversation, list[Turn]]:
    with tenant_context(tenant.organization):
        conversation = Conversation.objects.get(pk=conversation_id)
        return conversation, list(Turn.objects.filter(conversation_id=conversation_id).order_by("index"))


async def test_sessions_survive_a_killed_and_a_restarted_process_behind_nginx(topology, alpha_with_canned_replies):
    alpha = alpha_with_canned_replies
    client, created, began = await _open(topology, alpha)
    conversation_id = created["conversation_id"]
    first = await _ask(client, "Are you open on Sunday?")
    assert "sunday" in first["text"].lower()
    holder = topology.holder()
    other = "b" if holder == "a" else "a"

    # Both daphne processes share one metrics directory: either one reports the whole deployment.
    for name in ("a", "b"):
        status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{topology.daphne_ports[name]}/metrics")
        assert status == 200
        assert 'aura_turns_total{role="assistant"}' in body, name
        assert "aura_voice_sessions_active 1.0" in body, name
    assert (await asyncio.to_thread(_get, f"{topology.base_url}/metrics"))[0] == 404  # not exposed at the edge
    status, worker_metrics = await asyncio.to_thread(_get, f"http://127.0.0.1:{topology.worker_metrics_port}/")
    assert status == 200 and "aura_provider_requests_total" in worker_metrics  # the same shared directory

    # 1. The process holding the session dies without a word.
    topology.processes[holder].send_signal(signal.SIGKILL)
    assert await client.wait_closed(10) == 1006
    client, created, _ = await _open(topology, alpha, resume=began)
    assert created["conversation_id"] == conversation_id and created["resumed"] is True
    assert topology.holder() == other
    second = await _ask(client, "Do you deliver?")
    assert "deliver" in second["text"].lower()

    # 2. The survivor is stopped gracefully: the widget is told to reconnect, the process exits in time.
    stopping_at = time.monotonic()
    topology.processes[other].send_signal(signal.SIGTERM)
    assert await client.wait_closed(10) == 4012
    ended = client.of_type("session.ended")
    assert ended and ended[-1]["reason"] == "server_shutdown"
    await asyncio.to_thread(topology.processes[other].wait, 15)
    assert time.monotonic() - stopping_at < 10  # the grace is 8 s; nothing was in flight

    # 3. A restarted process takes the conversation back, history and all.
    topology.start_daphne(holder)
    client, created, _ = await _open(topology, alpha, resume=began)
    assert created["conversation_id"] == conversation_id and created["resumed"] is True
    third = await _ask(client, "Thanks, bye!")
    assert third["text"]
    await client.close()

    _, turns = await sync_to_async(_conversation)(alpha, conversation_id)
    said = [turn.text for turn in turns if turn.role == "visitor"]
    assert said == ["Are you open on Sunday?", "Do you deliver?", "Thanks, bye!"]
    assert [turn.index for turn in turns] == list(range(len(turns)))
