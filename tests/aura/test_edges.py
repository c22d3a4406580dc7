"""The platform's edges: a Content-Security-Policy on the admin and the widget's demo page, secure
cookies by default in production, and /metrics only for whoever Prometheus is."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from tests.processes import ROOT

pytestmark = pytest.mark.django_db


def _directives(header: str) -> dict[str, list[str]]:
    parts = (part.strip().split() for part in header.split(";") if part.strip())
    return {words[0]: words[1:] for words in parts}


def _strict_scripts(header: str) -> None:
    policy = _directives(header)
    scripts = policy.get("script-src", policy.get("default-src"))
    assert scripts is not None and "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]


def test_the_platform_and_tenant_admins_carry_a_content_security_policy(alpha):
    for host in ("localhost", alpha.host):
        login = Client(HTTP_HOST=host).get("/admin/login/")
        assert login.status_code == 200
        _strict_scripts(login["Content-Security-Policy"])

    client = Client(HTTP_HOST=alpha.host)
    assert client.post("/admin/login/", {"username": alpha.admin_email, "password": PASSWORD}).status_code == 302
    for page in ("/admin/", "/admin/voice/httptool/add/", "/admin/voice/assistant/"):
        response = client.get(page)
        assert response.status_code == 200, page
        _strict_scripts(response["Content-Security-Policy"])
        assert "<script>" not in response.content.decode()  # no inline script without a nonce


def test_the_demo_page_carries_a_policy_the_widget_works_under():
    response = Client(HTTP_HOST="localhost").get("/demo/")
    assert response.status_code == 200
    policy = _directives(response["Content-Security-Policy"])
    _strict_scripts(response["Content-Security-Policy"])
    assert "'self'" in policy["script-src"]  # widget.js and its audio worklets, from the platform
    assert "'self'" in policy["connect-src"]  # POST /widget/session and the voice WebSocket


def test_the_invoice_print_button_needs_no_inline_handler():
    text = (ROOT / "templates" / "admin" / "billing" / "invoice_print.html").read_text()
    assert "onclick=" not in text


def _production_settings(**env: str) -> dict[str, object]:
    """Settings as a production process reads them (a child process: settings are read once)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_COOKIES", "AURA_METRICS"))}
    from cryptography.fernet import Fernet

    child_env.update(
        AURA_ENV="production",
        SECRET_KEY="x" * 50,
        AURA_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_SETTINGS_MODULE="aura.settings.base",
        **env,
    )
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({n: getattr(s, n)"
        " for n in ('SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'CSRF_COOKIE_HTTPONLY',"
        " 'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SAMESITE')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=child_env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_httponly_and_samesite_without_an_extra_variable():
    values = _production_settings()
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True and values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax" and values["CSRF_COOKIE_SAMESITE"] == "Lax"
    # An operator serving plain HTTP on purpose can still say so.
    assert _production_settings(SECURE_COOKIES="0")["SESSION_COOKIE_SECURE"] is False


def test_development_over_http_keeps_working(alpha):
    from django.conf import settings

    assert settings.AURA_ENV != "production" and not settings.SESSION_COOKIE_SECURE  # tests run like development
    client = Client(HTTP_HOST=alpha.host)
    assert client.post("/admin/login/", {"username": alpha.admin_email, "password": PASSWORD}).status_code == 302
    assert client.get("/admin/").status_code == 200


# --- /metrics ----------------------------------------------------------------------------------------------


def test_metrics_need_the_token_when_one_is_set(settings, alpha):
    settings.AURA_METRICS_TOKEN = "scrape-token-0123456789"
    prometheus = Client(HTTP_HOST="10.0.3.7:8000")
    assert prometheus.get("/metrics").status_code == 401
    assert prometheus.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    answered = prometheus.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
    assert answered.status_code == 200 and "aura_voice_sessions_active" in answered.content.decode()
    for host in (alpha.host, "localhost"):  # a tenant's host, the platform's: the same rule
        response = Client(HTTP_HOST=host).get("/metrics")
        assert response.status_code == 401 and "aura_" not in response.content.decode()


def test_without_a_token_metrics_never_answer_on_a_tenants_host(settings, alpha):
    settings.AURA_METRICS_TOKEN = ""
    assert Client(HTTP_HOST=alpha.host).get("/metrics").status_code == 404
    assert Client(HTTP_HOST="10.0.3.7:8000").get("/metrics").status_code == 200  # development: by address


def test_without_a_token_production_serves_no_metrics(settings):
    settings.AURA_METRICS_TOKEN, settings.AURA_ENV = "", "production"
    assert Client(HTTP_HOST="10.0.3.7:8000").get("/metrics").status_code == 404
