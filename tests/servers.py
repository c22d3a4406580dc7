"""A real daphne process serving the platform against the test database and Redis (the daphne_server fixture)."""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from aura.embedded_services import free_port
from tests import seeds
from tests.fakes.twilio import FakeTwilioRest
from tests.processes import python_module, running, server_environment

# Fast, fixed simulated latencies: tests wait less, and overhead stays measurable.
SIMULATED_LATENCY_ENV = {
    "AURA_SIMULATED_STT_MS": "50",
    "AURA_SIMULATED_LLM_FIRST_TOKEN_MS": "80",
    "AURA_SIMULATED_LLM_TOKENS_PER_S": "200",
    "AURA_SIMULATED_TTS_FIRST_BYTE_MS": "40",
    "AURA_SIMULATED_TTS_VOICE": "tone",
    # Every test client is 127.0.0.1: a whole suite opens more sessions a minute than one visitor may.
    # (The limit itself is tested in tests/voice/test_widget_session.py.)
    "AURA_WIDGET_SESSIONS_PER_IP_PER_MINUTE": "100000",
}
# The platform's Twilio account, for numbers whose organization brings none (tests/telephony).
PLATFORM_TWILIO_ACCOUNT_SID = "AC" + "f" * 32
PLATFORM_TWILIO_AUTH_TOKEN = "platform-twilio-auth-token-for-tests"


@dataclass(frozen=True)
class Server:
    base_url: str
    port: int

    @property
    def ws_base(self) -> str:
        return f"ws://localhost:{self.port}"


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def twilio_rest() -> Iterator[FakeTwilioRest]:
    """Twilio's REST API as the server reaches it (TWILIO_API_BASE_URL), recording every request."""
    with FakeTwilioRest() as fake:
        yield fake


# What a newcomer's `make run` has that the other servers' environment changes: no provider keys, and
# the simulated providers as they ship (their latencies, and espeak-ng's voice where it is installed).
NEWCOMER_UNSET = ("OPENAI_API_KEY", "XAI_API_KEY", *SIMULATED_LATENCY_ENV)


@pytest.fixture(scope="session")
def newcomer_server(django_db_setup, django_db_blocker, twilio_rest) -> Server:
    """The platform as `make run` gives it to a newcomer: the demo organization seeded by ``seed_demo``
    (its assistant, tools, hours and knowledge as shipped), no keys, default settings. Only the
    platform's Twilio account is set, so the phone channel can be reached through the fake Twilio."""
    from django.core.management import call_command
    from django.test import override_settings

    port = free_port()
    base_url = f"http://localhost:{port}"
    with django_db_blocker.unblock():
        seeds.restore()
        with override_settings(AURA_PLATFORM_URL=base_url):  # as the launcher sets it for its port
            call_command("seed_demo", stdout=io.StringIO())
        seeds.remember()  # the demo organization's rows come back after a transactional test's flush
    env = {
        name: value
        for name, value in server_environment(
            AURA_PLATFORM_URL=base_url,
            TWILIO_ACCOUNT_SID=PLATFORM_TWILIO_ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=PLATFORM_TWILIO_AUTH_TOKEN,
            TWILIO_API_BASE_URL=twilio_rest.base_url,
        ).items()
        if name not in NEWCOMER_UNSET
    }
    command = python_module("aura.server", "-b", "127.0.0.1", "-p", str(port), "aura.asgi:application")
    with running(command, ready=lambda: answers_200(f"{base_url}/healthz"), log_name="newcomer-daphne", env=env):
        yield Server(base_url=base_url, port=port)


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, django_db_blocker, twilio_rest) -> Server:
    with django_db_blocker.unblock():
        seeds.restore()  # the platform's host must route before the server can answer /healthz
    port = free_port()
    # Loopback tool URLs are allowed here so tests can receive HTTP tool calls; tests/voice/tools checks the guard.
    env = server_environment(
        AURA_PLATFORM_URL=f"http://localhost:{port}",
        AURA_TOOL_URLS_ALLOW_LOOPBACK="1",
        TWILIO_ACCOUNT_SID=PLATFORM_TWILIO_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=PLATFORM_TWILIO_AUTH_TOKEN,
        TWILIO_API_BASE_URL=twilio_rest.base_url,
        **SIMULATED_LATENCY_ENV,
    )
    command = python_module("aura.server", "-b", "127.0.0.1", "-p", str(port), "aura.asgi:application")
    with running(command, ready=lambda: answers_200(f"http://localhost:{port}/healthz"), log_name="daphne", env=env):
        yield Server(base_url=f"http://localhost:{port}", port=port)
