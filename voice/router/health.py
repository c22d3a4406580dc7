"""Provider health: a circuit breaker and a moving average of time to first token per provider and
model, shared by every process of a deployment through one Redis hash.

    closed ──(AURA_BREAKER_FAILURES consecutive failures, or a rate limit)──▶ open
    open ──(cool-down over)──▶ half-open: one probe, claimed across processes
    half-open ──success──▶ closed        half-open ──failure──▶ open again

Routing decisions read a local snapshot (no network on the decision path). The snapshot takes this
process's own outcomes at once and other processes' within ``REFRESH_S``, refreshed in the background.
Redis unavailable: every process keeps its own breakers, and routing goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Literal

from django.conf import settings
from django.core.cache import caches
from redis.exceptions import RedisError

from core.redis import platform_redis
from voice.router.candidates import Candidate

logger = logging.getLogger(__name__)

HASH = "aura:provider-health"
PROBE_PREFIX = "aura:provider-probe:"
REFRESH_S = 1.0
EWMA_ALPHA = 0.3

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Health:
    state: Literal["closed", "open"] = "closed"
    failures: int = 0
    opened_until: float = 0.0  # wall-clock seconds: shared across machines
    first_token_ms: float | None = None  # moving average
    last_error: str = ""
    updated_at: float = 0.0

    def effective_state(self, now: float) -> State:
        if self.state == "open":
            return "open" if now < self.opened_until else "half_open"
        return "closed"

    def as_json(self) -> str:
        return json.dumps(
            {
                "state": self.state,
                "failures": self.failures,
                "opened_until": self.opened_until,
                "first_token_ms": self.first_token_ms,
                "last_error": self.last_error,
                "updated_at": self.updated_at,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> Health:
        data = json.loads(raw)
        return cls(
            state="open" if data.get("state") == "open" else "closed",
            failures=int(data.get("failures", 0)),
            opened_until=float(data.get("opened_until", 0.0)),
            first_token_ms=data.get("first_token_ms"),
            last_error=str(data.get("last_error", ""))[:300],
            updated_at=float(data.get("updated_at", 0.0)),
        )


# Failure and success are read-modify-write on one hash field: Lua keeps them atomic across processes.
_RECORD_FAILURE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local h = raw and cjson.decode(raw) or {state='closed', failures=0, opened_until=0}
local now, threshold, cooldown, hold = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local probing = h.state == 'open' and now >= (h.opened_until or 0)
h.failures = (h.failures or 0) + 1
h.last_error = ARGV[6]
h.updated_at = now
if probing or h.failures >= threshold or hold > 0 then
  h.state = 'open'
  h.opened_until = now + ((hold > 0) and hold or cooldown)
end
local encoded = cjson.encode(h)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
return encoded
"""
_RECORD_SUCCESS = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local h = raw and cjson.decode(raw) or {}
local sample, alpha = tonumber(ARGV[2]), tonumber(ARGV[3])
if sample >= 0 then
  if h.first_token_ms == nil or h.first_token_ms == cjson.null then
    h.first_token_ms = sample
  else
    h.first_token_ms = alpha * sample + (1 - alpha) * h.first_token_ms
  end
end
h.state = 'closed'
h.failures = 0
h.opened_until = 0
h.updated_at = tonumber(ARGV[4])
local encoded = cjson.encode(h)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
return encoded
"""


@dataclass
class ProviderHealth:
    """This process's view of every provider's health, kept in step with Redis."""

    failures_to_open: int
    cooldown_s: float
    entries: dict[str, Health] = field(default_factory=dict)
    refreshed_at: float = 0.0
    _refreshing: asyncio.Task[None] | None = None

    # -- reads: local, no awaits: these sit on the routing decision path -------------------------
    def get(self, candidate: Candidate) -> Health:
        return self.entries.get(candidate.key) or Health()

    def state(self, candidate: Candidate, now: float | None = None) -> State:
        return self.get(candidate).effective_state(time.time() if now is None else now)

    def first_token_ms(self, candidate: Candidate) -> float | None:
        return self.get(candidate).first_token_ms

    def refresh_soon(self) -> None:
        """Start a background refresh if the snapshot is older than REFRESH_S (never waits for it)."""
        if time.monotonic() - self.refreshed_at < REFRESH_S:
            return
        if self._refreshing is None or self._refreshing.done():
            self.refreshed_at = time.monotonic()
            self._refreshing = asyncio.create_task(self.refresh())

    # -- writes and sync with Redis ---------------------------------------------------------------
    async def refresh(self) -> None:
        started = time.time()
        try:
            raw = await platform_redis().hgetall(HASH)
        except (RedisError, OSError) as exc:
            logger.warning("provider health store unavailable; using this process's view: %s", exc)
            return
        shared = {key: Health.from_json(value) for key, value in raw.items()}
        # An outcome this process recorded while the read was in flight is newer than the snapshot.
        for key, mine in self.entries.items():
            theirs = shared.get(key)
            if mine.updated_at >= started or (theirs is not None and mine.updated_at > theirs.updated_at):
                shared[key] = mine
        self.entries = shared
        self.refreshed_at = time.monotonic()

    async def claim_probe(self, candidate: Candidate) -> bool:
        """Half-open: only one attempt in the whole deployment may probe a recovering model."""
        ttl_ms = max(1000, int(self.cooldown_s * 1000))
        try:
            return bool(await platform_redis().set(PROBE_PREFIX + candidate.key, "1", nx=True, px=ttl_ms))
        except (RedisError, OSError):
            return True

    async def release_probe(self, candidate: Candidate) -> None:
        """A probe that ended without an outcome (interrupted) frees its claim."""
        try:
            await platform_redis().delete(PROBE_PREFIX + candidate.key)
        except (RedisError, OSError) as exc:
            logger.warning("provider health store unavailable: %s", exc)

    async def record_success(self, candidate: Candidate, first_token_ms: float | None) -> None:
        now = time.time()
        sample = -1.0 if first_token_ms is None else first_token_ms
        before = self.get(candidate)
        average = before.first_token_ms
        if first_token_ms is not None:
            average = first_token_ms if average is None else EWMA_ALPHA * first_token_ms + (1 - EWMA_ALPHA) * average
        self.entries[candidate.key] = replace(
            before, state="closed", failures=0, opened_until=0.0, first_token_ms=average, updated_at=now
        )
        try:
            raw = await platform_redis().eval(_RECORD_SUCCESS, 1, HASH, candidate.key, sample, EWMA_ALPHA, now)
            self.entries[candidate.key] = Health.from_json(raw)
        except (RedisError, OSError) as exc:
            logger.warning("provider health store unavailable: %s", exc)

    async def record_failure(self, candidate: Candidate, error: str, *, hold_open_s: float = 0.0) -> None:
        """Count a failure; ``hold_open_s`` opens the breaker at once for that long (a rate limit's retry-after)."""
        now = time.time()
        before = self.get(candidate)
        probing = before.effective_state(now) == "half_open"
        failures = before.failures + 1
        opens = probing or failures >= self.failures_to_open or hold_open_s > 0
        self.entries[candidate.key] = replace(
            before,
            state="open" if opens else before.state,
            failures=failures,
            opened_until=now + (hold_open_s or self.cooldown_s) if opens else before.opened_until,
            last_error=error[:300],
            updated_at=now,
        )
        try:
            raw = await platform_redis().eval(
                _RECORD_FAILURE,
                1,
                HASH,
                candidate.key,
                now,
                self.failures_to_open,
                self.cooldown_s,
                hold_open_s,
                error[:300],
            )
            self.entries[candidate.key] = Health.from_json(raw)
        except (RedisError, OSError) as exc:
            logger.warning("provider health store unavailable: %s", exc)

    async def reset(self, candidate: Candidate) -> None:
        self.entries.pop(candidate.key, None)
        try:
            await platform_redis().hdel(HASH, candidate.key)
        except (RedisError, OSError) as exc:
            logger.warning("provider health store unavailable: %s", exc)


_health: ProviderHealth | None = None


def provider_health() -> ProviderHealth:
    """The process-wide view (one per process; Redis makes it one per deployment)."""
    global _health
    if _health is None:
        _health = ProviderHealth(
            failures_to_open=settings.AURA_BREAKER_FAILURES, cooldown_s=settings.AURA_BREAKER_COOLDOWN_S
        )
    return _health


def shared_health() -> dict[str, Health]:
    """Every breaker as Redis holds it, for the platform admin (synchronous: a view)."""
    client = caches["platform"]._cache.get_client(HASH)  # noqa: SLF001 - the raw client reads the shared hash
    return {
        (key.decode() if isinstance(key, bytes) else key): Health.from_json(value)
        for key, value in client.hgetall(HASH).items()
    }


def reset_shared_health(key: str) -> None:
    client = caches["platform"]._cache.get_client(HASH, write=True)  # noqa: SLF001
    client.hdel(HASH, key)
