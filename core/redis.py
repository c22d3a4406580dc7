"""Async Redis clients for the platform's shared state (breakers, counters), one per event loop."""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def platform_redis() -> aioredis.Redis:
    """The client for this event loop (redis.asyncio connections belong to the loop that made them)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.CACHE_REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0, decode_responses=True
        )
        _clients[loop] = client
    return client
