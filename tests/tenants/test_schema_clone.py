"""A cloned schema is the template, name for name: tables, columns, constraints, indexes, rows, counters."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django_tenants.utils import schema_context

from tenants.schema_clone import clone_schema
from tenants.schema_migrations import schemas_behind
from voice.models import Assistant

TEMPLATE = "tenant_template"

_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
       row_number() OVER (PARTITION BY c.relname ORDER BY a.attnum)  -- position; dropped columns leave gaps
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 6
"""
_CONSTRAINTS = """
SELECT c.relname, con.conname, con.contype, replace(pg_get_constraintdef(con.oid), %s || '.', '')
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s ORDER BY 1, 2
"""
_INDEXES = """
SELECT tablename, indexname, replace(indexdef, %s || '.', '') FROM pg_indexes WHERE schemaname = %s ORDER BY 1, 2
"""


def _catalog(schema: str) -> dict[str, list[tuple]]:
    with connection.cursor() as cursor:
        cursor.execute(_COLUMNS, [schema])
        columns = cursor.fetchall()
        cursor.execute(_CONSTRAINTS, [schema, schema])
        constraints = cursor.fetchall()
        cursor.execute(_INDEXES, [schema, schema])
        indexes = cursor.fetchall()
    return {"columns": columns, "constraints": constraints, "indexes": indexes}


def _rows(schema: str, table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY 1')
        return cursor.fetchall()


@pytest.mark.django_db
def test_the_clone_matches_the_template_name_for_name():
    clone_schema(TEMPLATE, "t_clone_probe")

    template, clone = _catalog(TEMPLATE), _catalog("t_clone_probe")
    assert len(template["columns"]) > 50
    assert len(template["indexes"]) > 20
    assert clone == template


@pytest.mark.django_db
def test_the_clone_has_the_templates_rows_and_is_up_to_date():
    clone_schema(TEMPLATE, "t_clone_probe")

    for table in ("django_migrations", "django_content_type", "auth_permission"):
        assert _rows("t_clone_probe", table) == _rows(TEMPLATE, table), table
    assert schemas_behind(["t_clone_probe"]) == []


@pytest.mark.django_db
def test_identity_counters_continue_after_the_copied_rows():
    clone_schema(TEMPLATE, "t_clone_probe")

    with connection.cursor() as cursor:
        cursor.execute('SELECT max(id) FROM "t_clone_probe".django_content_type')
        highest = cursor.fetchone()[0]
        cursor.execute(
            'INSERT INTO "t_clone_probe".django_content_type (app_label, model) VALUES (%s, %s) RETURNING id',
            ["probe", "probe"],
        )
        assert cursor.fetchone()[0] == highest + 1


def _insert_orphan_permission(schema: str, content_type_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{schema}".auth_permission (name, content_type_id, codename) VALUES (%s, %s, %s)',
            ["x", content_type_id, "x"],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.django_db
def test_foreign_keys_point_inside_the_clone():
    clone_schema(TEMPLATE, "t_clone_probe")
    with connection.cursor() as cursor:  # a row only the template has: a key still pointing there would accept it
        cursor.execute(
            f'INSERT INTO "{TEMPLATE}".django_content_type (app_label, model) VALUES (%s, %s) RETURNING id',
            ["probe", "only_in_template"],
        )
        template_only_id = cursor.fetchone()[0]

    with pytest.raises(IntegrityError, match="foreign key"), transaction.atomic():
        _insert_orphan_permission("t_clone_probe", template_only_id)
    with schema_context("t_clone_probe"):
        Assistant.objects.create(name="works")
        assert Assistant.objects.count() == 1


@pytest.mark.django_db
def test_a_template_with_a_view_is_refused_rather_than_half_copied():
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE VIEW "{TEMPLATE}".probe_view AS SELECT 1 AS one')

    with pytest.raises(NotImplementedError, match="probe_view"):
        clone_schema(TEMPLATE, "t_clone_probe")
