"""The PostgreSQL pool keeps its size: a thread that ran a query and ended without closing its connection
gives it back (aura/db_backend), so such threads cannot shrink the pool until nothing is left."""

from __future__ import annotations

import gc
import threading

import pytest
from django.db import connection, connections


def _borrowed(pool) -> int:
    stats = pool.get_stats()
    return stats.get("pool_size", 0) - stats.get("pool_available", 0)


@pytest.mark.django_db(transaction=True)
def test_threads_that_end_without_closing_give_their_connections_back():
    pool = connection.pool
    assert pool is not None, "the settings turn the pool on"
    errors: list[BaseException] = []

    def query_and_leave() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    before = _borrowed(pool)
    for _ in range(pool.max_size + 3):  # more threads than the pool has places
        thread = threading.Thread(target=query_and_leave)
        thread.start()
        thread.join(30)
        gc.collect()

    assert errors == []
    assert _borrowed(pool) == before
