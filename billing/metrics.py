"""Billing's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter

QUOTA_REFUSALS = Counter("aura_quota_refusals_total", "New sessions refused by plan limits, by reason code", ["reason"])
