"""Signatures on requests the platform sends to tenants' servers (HTTP tools, webhooks).

``AURA-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<payload>" with the shared secret>``.
The receiver recomputes it and rejects a timestamp older than a few minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "AURA-Signature"
TOLERANCE_S = 300


def signature_header(secret: str, payload: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify_signature(secret: str, payload: bytes, header: str, *, tolerance_s: int = TOLERANCE_S) -> bool:
    """True when ``header`` signs ``payload`` with ``secret`` and is recent: what a receiver does."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance_s:
        return False
    expected = signature_header(secret, payload, timestamp=t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
