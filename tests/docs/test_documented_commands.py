"""Every command the README and docs/ show works as written, for a newcomer who has set nothing.

The commands are read from the documents themselves (fenced shell blocks, and the README's inline
``make …`` / ``.venv/bin/python …`` spans), so a command added to a document is checked without
touching this file, and a kind of command nobody taught this file to check fails the test.

- ``make run`` runs for real in a fresh environment: no SECRET_KEY, DATABASE_URL, REDIS_URL or
  AURA_ENV, its own empty data directory; ready when ``/readyz`` answers. The ``manage.py`` commands
  then run for real beside it, "in a second terminal", against the servers it started.
- Benchmarks (``python -m bench.…``) take minutes and print figures for docs/benchmarks.md; here
  each one's module imports and its parser accepts the documented arguments.
- Other ``make`` targets must exist (``make -n``); ``curl`` URLs must route on the platform host;
  ``docker`` commands must name files that exist (the topology itself is tests/deploy's); variables
  in env-file blocks must be listed in .env.example.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.urls import Resolver404, resolve

from aura.embedded_services import free_port
from tests.servers import answers_200

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCK = re.compile(r"^```(sh|bash|shell|console)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`((?:make|\.venv/bin/python|python|manage\.py) [^`]+)`")
ENV_ASSIGNMENT = re.compile(r"^[A-Z][A-Z0-9_]*=")
# Steps on an operator's own host that only name their tools (copy certificates, edit a file, pull).
OPERATOR_STEPS = {"cp", "$EDITOR", "git"}
# Placeholders the documents use for values a reader chooses.
PLACEHOLDERS = {"'…'": "'aura-docs-check-2026'", "…": "aura-docs-check-2026"}
# What the environment of a newcomer's shell does not have.
UNSET = (
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "SECRET_KEY",
    "AURA_ENV",
    "DJANGO_SETTINGS_MODULE",
    "AURA_DATA_DIR",
    "AURA_MEDIA_ROOT",
    "AURA_PLATFORM_URL",
    "PYTEST_ADDOPTS",
    "MAKEFLAGS",
    "MAKELEVEL",
    "OPENAI_API_KEY",
    "XAI_API_KEY",
)


@dataclass(frozen=True)
class Command:
    where: str
    text: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


def documented_commands() -> list[Command]:
    commands = []
    for document in DOCUMENTS:
        text = document.read_text()
        name = document.relative_to(ROOT).as_posix()
        for block in SHELL_BLOCK.finditer(text):
            first_line = text.count("\n", 0, block.start(2)) + 1
            lines = block.group(2).replace("\\\n", " \\\n").split("\n")
            pending = ""
            for offset, line in enumerate(lines):
                pending += line.removesuffix("\\")
                if line.endswith("\\"):
                    continue
                if shlex.split(pending, comments=True):
                    commands.append(Command(f"{name}:{first_line + offset}", " ".join(pending.split())))
                pending = ""
        if document.name == "README.md":
            for span in INLINE.finditer(text):
                line = text.count("\n", 0, span.start()) + 1
                commands.append(Command(f"{name}:{line}", span.group(1)))
    return commands


def _kind(command: Command) -> str:
    argv = command.argv
    program = argv[0]
    if ENV_ASSIGNMENT.match(program):
        return "env"
    if program == "make":
        return "make"
    if program in (".venv/bin/python", "python", "python3"):
        return "manage" if argv[1] == "manage.py" else "module" if argv[1] == "-m" else "unknown"
    if program == "manage.py":
        return "manage"
    return {"curl": "curl", "docker": "docker"}.get(program, "operator" if program in OPERATOR_STEPS else "unknown")


COMMANDS = documented_commands()


def _of_kind(kind: str) -> list[Command]:
    return [command for command in COMMANDS if _kind(command) == kind]


def _params(kind: str) -> list[object]:
    return [pytest.param(command, id=command.where) for command in _of_kind(kind)]


def test_the_documents_show_commands_of_every_kind_this_file_checks() -> None:
    assert not _of_kind("unknown"), "teach this test how to check: " + "; ".join(map(str, _of_kind("unknown")))
    assert {"make", "manage", "module", "curl", "docker", "env"} <= {_kind(command) for command in COMMANDS}


def test_every_document_the_readme_and_docs_name_exists() -> None:
    missing = []
    for document in DOCUMENTS:
        text = document.read_text()
        names = set(re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", text))  # Markdown links
        names |= set(re.findall(r"`((?:docs|deploy|scripts|bench|tests|requirements)/[\w./-]+)`", text))
        for name in names:
            if not ((document.parent / name).exists() or (ROOT / name).exists() or _made_by_the_reader(name)):
                missing.append(f"{document.relative_to(ROOT)} names {name}")
    assert not missing


def _made_by_the_reader(name: str) -> bool:
    """A path the repository ignores on purpose (deploy/tls/: the operator's certificates)."""
    inside = f"{name.rstrip('/')}/file" if name.endswith("/") else name
    return subprocess.run(["git", "check-ignore", "-q", inside], cwd=ROOT).returncode == 0


# --- make run, then the manage.py commands beside it ----------------------------------------------


@dataclass(frozen=True)
class RunningPlatform:
    env: dict[str, str]
    base_url: str


def _newcomer_environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    env.update(AURA_DATA_DIR=str(data_dir), AURA_PORT=str(port))
    return env


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    data_dir = tmp_path_factory.mktemp("newcomer") / ".data"
    port = free_port()
    env = _newcomer_environment(data_dir, port)
    log_path = data_dir.parent / "make-run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 180
        while not answers_200(f"{base_url}/readyz"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make run did not become ready:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield RunningPlatform(env=env, base_url=base_url)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in its terminal
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log_path.read_text()
    assert "Traceback" not in output, output[-4000:]
    assert "AURA is running" in output and "simulated" in output.lower()


def _run(argv: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _with_placeholders_filled(command: Command) -> list[str]:
    text = command.text
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    argv = shlex.split(text, comments=True)
    return [".venv/bin/python", *argv] if argv[0] == "manage.py" else argv


@pytest.mark.parametrize("command", _params("manage"))
def test_documented_manage_command_runs_beside_make_run(command: Command, make_run: RunningPlatform) -> None:
    result = _run(_with_placeholders_filled(command), make_run.env)

    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Traceback" not in output, f"{command}\n{output[-4000:]}"


def test_make_run_serves_the_demo_and_its_banner_urls(make_run: RunningPlatform) -> None:
    with urllib.request.urlopen(f"{make_run.base_url}/demo/", timeout=10) as response:
        assert response.status == 200
        assert b"aura" in response.read().lower()


def test_spectacular_writes_the_schema_the_platform_serves(make_run: RunningPlatform, tmp_path: Path) -> None:
    schema_file = tmp_path / "schema.yml"

    result = _run([".venv/bin/python", "manage.py", "spectacular", "--file", str(schema_file)], make_run.env)

    assert result.returncode == 0, result.stderr[-4000:]
    written = yaml.safe_load(schema_file.read_text())
    request = urllib.request.Request(
        f"{make_run.base_url}/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        served = json.loads(response.read())
    assert written["paths"], "the schema file has no paths"
    assert "/api/v1/assistants/" in written["paths"]
    assert written == served


def test_a_production_environment_still_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    env = _newcomer_environment(tmp_path, free_port())
    env["AURA_ENV"] = "production"

    result = _run([".venv/bin/python", "manage.py", "check"], env)

    assert result.returncode != 0
    assert "Set the environment variable SECRET_KEY" in result.stderr
    assert not (tmp_path / "dev").exists(), "production started embedded servers"


# --- the rest, checked without running for minutes -------------------------------------------------

_ACCEPT_ARGUMENTS = """
import argparse, runpy, sys
def parse_and_stop(self, args=None, namespace=None):
    argparse.ArgumentParser.parse_args = original  # only the module's own, first parser
    original(self, args, namespace)
    raise SystemExit(0)
original = argparse.ArgumentParser.parse_args
argparse.ArgumentParser.parse_args = parse_and_stop
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
raise SystemExit("the module never parsed its arguments")
"""


@pytest.mark.parametrize("command", _params("module"))
def test_documented_module_accepts_its_documented_arguments(command: Command) -> None:
    argv = command.argv
    module, arguments = argv[2], argv[3:]

    result = _run([sys.executable, "-c", _ACCEPT_ARGUMENTS, module, *arguments], dict(os.environ), timeout=60)

    assert result.returncode == 0, f"{command}\n{result.stderr[-4000:]}"


@pytest.mark.parametrize("command", _params("make"))
def test_documented_make_target_exists(command: Command) -> None:
    result = _run(["make", "-n", *command.argv[1:]], dict(os.environ))

    assert result.returncode == 0, f"{command}\n{result.stderr}"


@pytest.mark.parametrize("command", _params("curl"))
def test_documented_curl_url_routes_on_the_platform_host(command: Command) -> None:
    url = next(arg for arg in command.argv if arg.startswith(("http://", "https://")))
    path = urlsplit(re.sub(r"[0-9a-f]*…", "0b9f3f3e-4c1a-4f31-9d5e-0a4a3c2b1d00", url)).path

    try:
        resolve(path, urlconf="aura.urls_public")
    except Resolver404:
        routed = False
    else:
        routed = True
    assert routed, f"{command}: {path} does not route on the platform host"


@pytest.mark.parametrize("command", _params("docker"))
def test_documented_docker_command_names_files_that_exist(command: Command) -> None:
    argv = command.argv
    named = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-f"]
    if argv[1] == "build":
        named.append("Dockerfile")

    assert named, f"{command}: names no file to check"
    assert all((ROOT / name).is_file() for name in named), command


@pytest.mark.parametrize("command", _params("env"))
def test_documented_variable_is_listed_in_env_example(command: Command) -> None:
    listed = (ROOT / ".env.example").read_text()
    names = [arg.split("=", 1)[0] for arg in command.argv if ENV_ASSIGNMENT.match(arg)]

    assert all(re.search(rf"^#? ?{name}=", listed, re.M) for name in names), f"{command}: not in .env.example"
