"""docker-compose.prod.yml holds what the production topology needs. No Docker engine runs here, so
the file is checked as data; `docker compose config` also checks it where the compose client exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"postgres", "redis", "migrate", "web", "worker", "beat", "nginx", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.prod.yml").read_text())


def test_every_service_is_there_with_a_health_check(compose: dict) -> None:
    services = compose["services"]
    assert set(services) >= SERVICES
    for name in SERVICES:
        assert "healthcheck" in services[name], f"{name} has no health check"


def test_web_scales_and_drains_gracefully(compose: dict) -> None:
    web = compose["services"]["web"]
    assert "container_name" not in web and "ports" not in web  # --scale web=N
    assert web.get("stop_signal", "SIGTERM") == "SIGTERM"
    grace = int(str(web["stop_grace_period"]).rstrip("s"))
    assert grace >= 25 + 10  # AURA_SHUTDOWN_GRACE_S (25 s by default) plus time to exit
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_secrets_come_from_an_env_file_not_the_compose_file(compose: dict) -> None:
    for name in ("migrate", "web", "worker", "beat"):
        service = compose["services"][name]
        assert service.get("env_file"), name
        environment = service.get("environment") or {}
        for key in ("SECRET_KEY", "AURA_ENCRYPTION_KEYS", "OPENAI_API_KEY", "XAI_API_KEY"):
            assert key not in environment, f"{name} sets {key} inline"


def test_prometheus_scrapes_the_web_replicas_with_the_token_they_require(compose: dict) -> None:
    web, prometheus = compose["services"]["web"], compose["services"]["prometheus"]
    assert "metrics-token" in web["secrets"] and "metrics-token" in prometheus["secrets"]
    assert web["environment"]["AURA_METRICS_TOKEN_FILE"] == "/run/secrets/metrics-token"
    assert compose["secrets"]["metrics-token"]["file"].startswith("./deploy/secrets/")
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [job] = [job for job in scrape["scrape_configs"] if job["job_name"] == "aura-web"]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics-token"}


def test_nginx_uses_the_projects_configuration(compose: dict) -> None:
    volumes = " ".join(str(v) for v in compose["services"]["nginx"]["volumes"])
    assert "deploy/nginx" in volumes


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    probe = docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if not probe or probe.returncode != 0:
        pytest.skip("the docker compose client is not installed here; the file is checked as data above")
    env_file = ROOT / ".env.prod"
    created = not env_file.exists()
    if created:
        env_file.write_text("SECRET_KEY=x\nAURA_ENCRYPTION_KEYS=x\n")
    try:
        result = subprocess.run(
            [docker, "compose", "-f", str(ROOT / "docker-compose.prod.yml"), "config", "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        if created:
            env_file.unlink()
    assert result.returncode == 0, result.stderr
