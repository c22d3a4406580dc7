"""The database engine: django-tenants' schema switching, plus django-prometheus' connection and
query counters (the stock prometheus backend cannot be combined with django-tenants' by settings).

With the connection pool (settings: ``OPTIONS["pool"]``), a thread that borrowed a connection and ended
without closing it (Django closes connections at the end of a request and after each
``database_sync_to_async`` call, but not for every thread that ever runs a query) would keep its place in
the pool for ever: the pool would shrink with every such thread until nothing was left. Each borrowed
connection is therefore given back when its thread's ``DatabaseWrapper`` is garbage-collected, if it
was not given back before.
"""

from __future__ import annotations

import weakref
from typing import Any

from django_prometheus.db.common import DatabaseWrapperMixin, ExportingCursorWrapper
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper


def _give_back(borrowed: list[Any]) -> None:
    connection = borrowed.pop() if borrowed else None
    pool = getattr(connection, "_pool", None)  # the pool it came from (None once the pool let it go)
    if pool is not None and not pool.closed:
        pool.putconn(connection)


class DatabaseWrapper(DatabaseWrapperMixin, TenantDatabaseWrapper):
    _borrowed: list[Any] | None = None

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params["cursor_factory"] = ExportingCursorWrapper(params["cursor_factory"], self.alias, self.vendor)
        return params

    def create_cursor(self, name: str | None = None) -> Any:
        # psycopg 3 builds instrumented cursors from cursor_factory; the mixin's create_cursor is for psycopg 2.
        return TenantDatabaseWrapper.create_cursor(self, name=name)

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if self.pool is not None:
            if self._borrowed is None:
                self._borrowed = []
                weakref.finalize(self, _give_back, self._borrowed)
            self._borrowed[:] = [connection]
        return connection

    def _close(self) -> None:
        if self._borrowed:
            self._borrowed.clear()  # given back now, by Django
        super()._close()
