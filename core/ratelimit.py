"""Sliding-window rate limits counted in Redis, shared by every process of a deployment.

Each bucket is a sorted set of the moments of the requests it allowed, trimmed to the last window on
every call, in one Lua script (atomic: two processes can never both take the last place). A request is
allowed only if fewer than ``limit`` requests were allowed in the ``window_s`` seconds before it, so no
client ever gets more than ``limit`` in any window — a fixed window allowed twice the limit across a
boundary. Refused requests are not recorded: a client that keeps knocking is let in again as soon as its
oldest allowed request leaves the window, and ``retry_after_s`` says when that is.

Memory: at most ``limit`` entries per active bucket; a bucket expires one window after its last entry.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass

from redis.exceptions import RedisError

from core.redis import platform_redis_sync

logger = logging.getLogger(__name__)

# KEYS[1]: the bucket. ARGV: now (s), window (s), limit, member, record (1: count this request if allowed).
# Returns {allowed (0/1), milliseconds until the next request would be allowed}.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  if ARGV[5] == '1' then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  end
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return {0, math.ceil((tonumber(oldest[2]) + window - now) * 1000)}
"""
_script = None


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: int = 0


def _run(bucket: str, *, limit: int, window_s: float, now: float | None, record: bool) -> RateDecision:
    global _script
    if limit <= 0:
        return RateDecision(allowed=False, retry_after_s=max(1, math.ceil(window_s)))
    moment = time.time() if now is None else now
    try:
        if _script is None:
            _script = platform_redis_sync().register_script(_SLIDING_WINDOW)
        allowed, wait_ms = _script(
            keys=[f"aura-rl:{bucket}"],
            args=[repr(moment), window_s, limit, uuid.uuid4().hex, "1" if record else "0"],
            client=platform_redis_sync(),
        )
    except RedisError as exc:
        logger.warning("rate limit store unavailable, allowing %s: %s", bucket, exc)
        return RateDecision(allowed=True)
    if allowed:
        return RateDecision(allowed=True)
    return RateDecision(allowed=False, retry_after_s=max(1, math.ceil(int(wait_ms) / 1000)))


def hit(bucket: str, *, limit: int, window_s: float, now: float | None = None) -> RateDecision:
    """Count one request in ``bucket`` if fewer than ``limit`` were allowed in the last ``window_s`` seconds;
    refuse it otherwise. Fails open if Redis is down (a Redis outage must not refuse every request)."""
    return _run(bucket, limit=limit, window_s=window_s, now=now, record=True)


def peek(bucket: str, *, limit: int, window_s: float, now: float | None = None) -> RateDecision:
    """Whether ``hit`` would allow a request now, without counting one."""
    return _run(bucket, limit=limit, window_s=window_s, now=now, record=False)
