"""The platform's Redis connections: one bounded pool per process for synchronous code (caches, rate limits,
health, session slots, locks) and one bounded pool per event loop for async code (breakers, session slots).

Django's ``RedisCache`` builds a connection pool per cache *instance*, and ``caches`` holds an instance
per thread and per asyncio context: under daphne every HTTP request got its own pool, whose connection
stayed open after the request (nothing closes it; ``RedisCache.close`` is a no-op). ``SharedPoolRedisCache``
hands every instance the process's one pool instead. The pools are ``BlockingConnectionPool``: at the
bound, a caller waits (up to ``AURA_REDIS_POOL_TIMEOUT_S``) for a connection rather than opening another.

Connections ping before reuse after ``AURA_REDIS_HEALTH_CHECK_S`` idle, keep TCP keep-alive, and retry a
command once on a broken connection (redis-py's ``Retry``): after Redis restarts, or reaps an idle client
(its ``timeout``), the next command reconnects by itself.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

_lock = threading.Lock()
_sync_pools: dict[str, redis.BlockingConnectionPool] = {}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def _connection_options() -> dict[str, Any]:
    return {
        "max_connections": settings.AURA_REDIS_MAX_CONNECTIONS,
        "timeout": settings.AURA_REDIS_POOL_TIMEOUT_S,  # waiting for a free connection at the bound
        "socket_connect_timeout": 1.0,
        "socket_timeout": settings.AURA_REDIS_SOCKET_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": settings.AURA_REDIS_HEALTH_CHECK_S,
    }


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2)


def sync_pool(url: str | None = None) -> redis.BlockingConnectionPool:
    """The process's pool for ``url`` (default: the cache database). redis-py resets it in a forked child."""
    url = url or settings.CACHE_REDIS_URL
    pool = _sync_pools.get(url)
    if pool is None:
        with _lock:
            pool = _sync_pools.get(url)
            if pool is None:
                pool = redis.BlockingConnectionPool.from_url(
                    url,
                    retry=_retry(),
                    retry_on_error=[RedisConnectionError, RedisTimeoutError],
                    **_connection_options(),
                )
                _sync_pools[url] = pool
    return pool


def platform_redis_sync() -> redis.Redis:
    """A client on the process's pool for the cache database. Replies are bytes (the caches' pickles share it)."""
    return redis.Redis(connection_pool=sync_pool())


def platform_redis() -> aioredis.Redis:
    """The async client for this event loop (redis.asyncio connections belong to the loop that made them),
    on a bounded pool of its own. Replies are decoded to str."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.CACHE_REDIS_URL,
            decode_responses=True,
            retry=_async_retry(),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            **_connection_options(),
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client


def _async_retry() -> Any:
    from redis.asyncio.retry import Retry as AsyncRetry

    return AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), retries=2)


def close_pools() -> None:
    """Disconnect the synchronous pools (tests that point settings at another Redis)."""
    with _lock:
        for pool in _sync_pools.values():
            pool.disconnect()
        _sync_pools.clear()


class _SharedPoolClient(RedisCacheClient):
    def _get_connection_pool(self, write: bool) -> redis.ConnectionPool:
        return sync_pool(self._servers[self._get_connection_pool_index(write)])


class SharedPoolRedisCache(RedisCache):
    """Django's Redis cache on the process's shared, bounded pool (see the module's docstring)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _SharedPoolClient
