"""The seeded organizations as they were after set-up, kept so they can be put back after a flush.

A transactional test ends with a flush of the public schema's tables; tenant schemas survive it, with
whatever the test (or a server it drove) stored in them. Both are put back after every transactional
test (tests/conftest.py), so a test finds the seeded state whichever tests ran before it on its
pytest-xdist worker, not only in the one order of a serial run.
"""

from __future__ import annotations

from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name

from billing.models import Plan, PlanPeriod, ProviderPrice, Subscription
from tenants.models import Domain, Organization, WidgetKey

_ROWS: dict[str, list[dict[str, object]]] = {}
_MODELS = {
    "organizations": Organization,
    "domains": Domain,
    "widget_keys": WidgetKey,
    # billing's catalog and the seeded organizations' trials, also public-schema rows
    "plans": Plan,
    "prices": ProviderPrice,
    "subscriptions": Subscription,
    "plan_periods": PlanPeriod,
}
# Every table of each seeded organization's schema, as COPY data: schema -> table -> rows.
_TENANT_TABLES: dict[str, dict[str, bytes]] = {}


def remember() -> None:
    for name, model in _MODELS.items():
        _ROWS[name] = list(model.objects.values())
    # A schema is kept as first seen (at set-up; the demo organization's when newcomer_server seeds it):
    # a later call may come while a test has already changed alpha's or beta's rows.
    schemas = Organization.objects.exclude(schema_name=get_public_schema_name()).values_list("schema_name", flat=True)
    with connection.cursor() as cursor:
        for schema in schemas:
            if schema not in _TENANT_TABLES:
                _TENANT_TABLES[schema] = {table: _copy_out(cursor, schema, table) for table in _tables(cursor, schema)}


def restore() -> None:
    """Idempotent: does nothing while the rows are there."""
    if not _ROWS or Organization.objects.filter(slug="alpha").exists():
        return
    for name, model in _MODELS.items():
        model.objects.bulk_create([model(**row) for row in _ROWS[name]])


def reset_tenant_schemas() -> None:
    """Put every table of the seeded organizations' schemas back as it was when remembered."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's foreign keys are deferrable: any order
        for schema, tables in _TENANT_TABLES.items():
            present = _tables(cursor, schema)
            if not present:
                continue  # dropped by a test
            for table in present:  # DELETE, not TRUNCATE: these tables are small, TRUNCATE makes new files
                cursor.execute(f"DELETE FROM {_name(schema, table)}")
            for table, data in tables.items():
                if data and table in present:
                    with cursor.cursor.copy(f"COPY {_name(schema, table)} FROM STDIN") as copy:
                        copy.write(data)


def _tables(cursor, schema: str) -> list[str]:
    cursor.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'django_migrations' ORDER BY 1",
        [schema],
    )
    return [table for (table,) in cursor.fetchall()]


def _copy_out(cursor, schema: str, table: str) -> bytes:
    with cursor.cursor.copy(f"COPY {_name(schema, table)} TO STDOUT") as copy:
        return b"".join(bytes(block) for block in copy)


def _name(schema: str, table: str) -> str:
    return f'"{schema}"."{table}"'
