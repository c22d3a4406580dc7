"""Embedded Redis is shared: `make run` and a `manage.py` command in a second terminal use one server,
and it stops when the last process using it exits."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from aura.embedded_services import _answers_ping, _release_redis, start_redis

HOLD = """
import sys, time
from pathlib import Path
from aura.embedded_services import start_redis
print(start_redis(Path(sys.argv[1])), flush=True)
sys.stdin.readline()
"""


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_a_second_process_reuses_the_running_server_and_the_last_one_stops_it(tmp_path: Path) -> None:
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        first_url = first.stdout.readline().strip()

        second_url = start_redis(tmp_path)
        _release_redis(tmp_path)  # this process is done with it, as at its exit

        assert second_url == first_url
        assert _answers_ping(_port(first_url)), "released by one user while another still uses it"
    finally:
        first.communicate("\n", timeout=30)
    deadline = time.monotonic() + 10
    while _answers_ping(_port(first_url)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _answers_ping(_port(first_url)), "still running after its last user exited"


def test_a_stale_record_of_a_dead_server_starts_a_new_one(tmp_path: Path) -> None:
    (tmp_path / "server.json").write_text('{"pid": 999999, "port": 1}')

    url = start_redis(tmp_path)
    try:
        assert _port(url) != 1 and _answers_ping(_port(url))
    finally:
        _release_redis(tmp_path)
    assert not _answers_ping(_port(url))
