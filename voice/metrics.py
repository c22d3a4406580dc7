"""The voice product's own Prometheus metrics (exposed with the rest at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Labels stay bounded: provider and model come from the router's candidates, capability is llm/stt/tts.
PROVIDER_REQUESTS = Counter(
    "aura_provider_requests_total",
    "Provider attempts by outcome (ok, skipped, or an error kind)",
    ["capability", "provider", "model", "outcome"],
)
PROVIDER_FIRST_TOKEN = Histogram(
    "aura_provider_first_token_seconds",
    "Time from a provider request to its first token, transcript or audio byte",
    ["capability", "provider", "model"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
ROUTER_FAILOVERS = Counter(
    "aura_router_failovers_total",
    "Calls served by a candidate other than the first one planned",
    ["capability"],
)
