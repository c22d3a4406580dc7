"""Webhook signatures, as Stripe does them: ``AURA-Signature: t=<unix>,v1=<hex>`` where the hex is
HMAC-SHA256(secret, f"{t}.{body}"). Receivers check it and refuse timestamps too far from now."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "AURA-Signature"
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = DEFAULT_TOLERANCE_S) -> bool:
    """What a receiver does (docs/api.md has the same few lines for integrators)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), parts.get("v1", ""))
