"""The size check `make test` runs over the tracked files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts.check_tracked_files import ALLOWED, oversized

ROOT = Path(__file__).resolve().parents[2]


def _repo(tmp_path: Path, files: dict[str, int]) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for name, size in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    return tmp_path


def test_a_large_tracked_file_outside_the_allow_list_is_reported(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "py_spy-0.4.3-py2.py3-none-manylinux1_x86_64.whl": 2_936_517,
            "tests/fixtures/speech/long.wav": 1_500_000,
            "docs/screenshots/admin.png": 1_200_000,
            "aura/small.py": 999_999,
        },
    )

    assert oversized(repo) == [("py_spy-0.4.3-py2.py3-none-manylinux1_x86_64.whl", 2_936_517)]


def test_an_allowed_pattern_does_not_cover_other_folders(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"tests/fixtures/other/noise.wav": 1_100_000})

    assert oversized(repo, allowed=ALLOWED) == [("tests/fixtures/other/noise.wav", 1_100_000)]


def test_this_checkout_passes() -> None:
    script = "scripts/check_tracked_files.py"
    result = subprocess.run([sys.executable, script], cwd=ROOT, capture_output=True, text=True)

    assert result.returncode == 0, result.stdout
