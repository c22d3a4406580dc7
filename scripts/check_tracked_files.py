"""`make test` fails when a tracked file over 1 MB appears outside the allow-list.

Binaries, wheels and generated data belong in `requirements/` (by name and version) or are made by the
code; only the small speech fixtures and the documentation's screenshots are committed as media.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

LIMIT_BYTES = 1_000_000
ALLOWED = ("tests/fixtures/speech/*.wav", "docs/screenshots/*.png")


def oversized(root: Path, limit: int = LIMIT_BYTES, allowed: tuple[str, ...] = ALLOWED) -> list[tuple[str, int]]:
    """Tracked files (in the index, so also staged ones) over `limit` bytes that no allowed pattern matches."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    found = []
    for name in listed.decode().split("\0"):
        path = root / name
        if not name or not path.is_file() or any(fnmatch.fnmatch(name, pattern) for pattern in allowed):
            continue
        size = path.stat().st_size
        if size > limit:
            found.append((name, size))
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        print("check_tracked_files: not a git checkout, nothing to check")
        return 0
    found = oversized(root)
    for name, size in found:
        limit = f"{LIMIT_BYTES / 1e6:.0f} MB outside {', '.join(ALLOWED)}"
        print(f"check_tracked_files: {name} is {size / 1e6:.1f} MB (limit {limit}): keep it out of the tree")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
