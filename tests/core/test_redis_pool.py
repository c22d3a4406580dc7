"""One bounded Redis pool per process (aura/redis.py): Django's caches in every thread and every asyncio
context share it, and it never opens more than AURA_REDIS_MAX_CONNECTIONS connections."""

from __future__ import annotations

import asyncio
import threading

from django.core.cache import caches

from core.redis import platform_redis_sync, sync_pool


def test_caches_in_many_threads_and_contexts_share_one_bounded_pool(settings) -> None:
    pools: set[int] = set()

    def use_caches() -> None:
        for alias in ("default", "platform"):
            caches[alias].set("pool-probe", 1)
            pools.add(id(caches[alias]._cache._get_connection_pool(write=True)))

    async def in_contexts() -> None:
        await asyncio.gather(*(asyncio.to_thread(use_caches) for _ in range(20)))

    threads = [threading.Thread(target=use_caches) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    asyncio.run(in_contexts())

    pool = sync_pool()
    assert pools == {id(pool)}
    assert platform_redis_sync().connection_pool is pool
    assert len(pool._connections) <= settings.AURA_REDIS_MAX_CONNECTIONS  # every connection it ever opened
