"""The database engine: django-tenants' schema switching, plus django-prometheus' connection and
query counters (the stock prometheus backend cannot be combined with django-tenants' by settings)."""

from __future__ import annotations

from typing import Any

from django_prometheus.db.common import DatabaseWrapperMixin, ExportingCursorWrapper
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper


class DatabaseWrapper(DatabaseWrapperMixin, TenantDatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params["cursor_factory"] = ExportingCursorWrapper(params["cursor_factory"], self.alias, self.vendor)
        return params

    def create_cursor(self, name: str | None = None) -> Any:
        # psycopg 3 builds instrumented cursors from cursor_factory; the mixin's create_cursor is for psycopg 2.
        return TenantDatabaseWrapper.create_cursor(self, name=name)
