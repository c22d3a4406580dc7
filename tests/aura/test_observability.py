"""Logs, probes and metrics: what operators rely on."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.test import Client

from core import log_context, shutdown
from core.logs import ContextFilter, JsonFormatter, PlainFormatter, redact
from voice.router.candidates import Candidate
from voice.router.health import ProviderHealth


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("voice.session", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to bob.smith@example.com", "write to [email]"),
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("call (555) 123-4567", "call [phone]"),
        ("card 4111 1111 1111 1111 expires", "card [card] expires"),
        ("key sk-proj-abcdefghijklmnop", "key [key]"),
        ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer [key]"),
    ],
)
def test_personal_data_and_secrets_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_ids_timestamps_and_timings_stay_readable() -> None:
    text = "turn 2 in 12345678-1234-4234-9234-123456789012 at 1795325946123456789 took 184.0 ms"
    assert redact(text) == text  # the long number fails the Luhn check: not a card


def test_a_json_line_carries_the_session_and_the_turn_fields() -> None:
    session = str(uuid.uuid4())
    log_context.bind(request="", session=session, organization="t_alpha")
    record = _record("visitor %s said hi", "ann@example.com", fields={"event": "turn", "total_ms": 812.5})
    assert ContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "visitor [email] said hi"
    assert line["session_id"] == session and line["organization"] == "t_alpha"
    assert line["event"] == "turn" and line["total_ms"] == 812.5
    assert line["level"] == "INFO" and line["logger"] == "voice.session"
    plain = PlainFormatter("%(levelname)s %(message)s").format(record)
    assert plain.startswith("INFO visitor [email] said hi session_id=") and "total_ms=812.5" in plain
    log_context.bind(session="", organization="")


def test_probes_and_metrics_answer_on_any_host_name(db) -> None:
    client = Client(HTTP_HOST="10.0.3.7:8000")  # how an orchestrator or Prometheus addresses a process
    assert client.get("/healthz").json() == {"status": "ok"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    body = metrics.content.decode()
    assert "aura_voice_sessions_active" in body
    assert "django_http_requests_total_by_method_total" in body
    assert client.get("/admin/").status_code == 404  # everything else still needs a known host


def test_every_response_carries_a_request_id_and_a_sane_one_is_kept(db) -> None:
    client = Client(HTTP_HOST="10.0.3.7")
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="edge-abc-12345")["X-Request-ID"] == "edge-abc-12345"
    assert client.get("/healthz", HTTP_X_REQUEST_ID="<script>")["X-Request-ID"] != "<script>"


async def test_an_open_breaker_shows_in_the_metrics_of_every_process() -> None:
    candidate = Candidate("openai", f"metrics-{uuid.uuid4().hex[:6]}")
    await ProviderHealth(failures_to_open=1, cooldown_s=60).record_failure(candidate, "unavailable: 500")
    from asgiref.sync import sync_to_async

    body = await sync_to_async(lambda: Client(HTTP_HOST="10.0.3.7").get("/metrics").content.decode())()
    assert f'aura_provider_breaker_open{{provider_model="{candidate.key}"}} 1.0' in body
    assert 'aura_celery_queue_depth{queue="celery"}' in body


def test_readiness_fails_while_draining(db, monkeypatch) -> None:
    monkeypatch.setattr(shutdown, "_draining", True)
    response = Client(HTTP_HOST="10.0.3.7").get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "draining"


async def test_drain_runs_every_drainer_within_the_grace(monkeypatch) -> None:
    import asyncio

    monkeypatch.setattr(shutdown, "_drainers", [])
    monkeypatch.setattr(shutdown, "_draining", False)
    finished: list[str] = []

    async def quick(deadline: float) -> None:
        finished.append("quick")

    async def stuck(deadline: float) -> None:
        await asyncio.sleep(60)
        finished.append("stuck")

    shutdown.on_drain(quick)
    shutdown.on_drain(stuck)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await shutdown.drain(0.2)
    assert shutdown.is_draining()
    assert finished == ["quick"]
    assert loop.time() - started < 1.0
