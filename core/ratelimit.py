"""Fixed-window rate limits counted in Redis, shared by every process of a deployment."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.cache import caches
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: int = 0


def hit(bucket: str, *, limit: int, window_s: int) -> RateDecision:
    """Count one request in ``bucket``; refuse past ``limit`` per window. Fails open if Redis is down."""
    now = time.time()
    window = int(now // window_s)
    key = f"aura-rl:{bucket}:{window}"
    try:
        client = caches["platform"]._cache.get_client(key, write=True)  # noqa: SLF001 - atomic INCR needs the client
        pipe = client.pipeline()
        pipe.incr(key)
        pipe.expire(key, window_s + 1)
        count, _ = pipe.execute()
    except RedisError as exc:
        logger.warning("rate limit store unavailable, allowing %s: %s", bucket, exc)
        return RateDecision(allowed=True)
    if count <= limit:
        return RateDecision(allowed=True)
    return RateDecision(allowed=False, retry_after_s=max(1, int((window + 1) * window_s - now) + 1))
