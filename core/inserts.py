"""INSERT statements built once per model, for the writes every live voice turn makes.

A voice server stores each turn and its usage events from one database thread while its event
loop serves every session. Django's compiler rebuilds an INSERT's SQL on every call: about 1 ms of
CPU for a turn's two dozen columns on the project's machine, and as much again for a turn's usage
events, all of it holding the GIL while the loop waits (bench.voice: recording turns took 10 % of
the server's core and most of its latency tail at 200 sessions; docs/benchmarks.md).

``insert_rows`` writes what ``Model.save()`` on a new instance or ``bulk_create`` would, through
the same connection and cursor wrappers (django-tenants' search path, query metrics): values come
from each field's own ``pre_save(add=True)`` and ``get_db_prep_save``, so defaults, ``auto_now_add``,
files, JSON and decimals are stored as Django stores them. It sends no model signals (none of the
models it writes has receivers, and the project keeps business logic out of signals) and refuses a
model with its own ``save()``, whose work it would skip.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections, models


@cache
def _statement(model: type[models.Model], rows: int, ignore_conflicts: bool) -> tuple[str, tuple[models.Field, ...]]:
    if model.save is not models.Model.save:
        raise TypeError(f"{model.__name__} has its own save(); insert_rows would skip it")
    meta = model._meta  # noqa: SLF001 - Django's model API
    pk = meta.pk
    assert pk is not None
    columns = tuple(field for field in meta.concrete_fields if not (field is pk and isinstance(pk, models.AutoField)))
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in columns)}) "
        f"VALUES {', '.join([placeholders] * rows)}"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else f" RETURNING {quote(pk.column)}")
    )
    return sql, columns


def insert_rows(objs: Sequence[models.Model], *, ignore_conflicts: bool = False) -> None:
    """INSERT new instances of one model in one statement; sets each one's primary key (unless
    ``ignore_conflicts``, where, as with ``bulk_create``, rows that conflict are skipped silently)."""
    if not objs:
        return
    connection = connections[DEFAULT_DB_ALIAS]  # the thread's wrapper, looked up once, not per value
    sql, columns = _statement(type(objs[0]), len(objs), ignore_conflicts)
    params: list[object] = []
    for obj in objs:
        params.extend(field.get_db_prep_save(field.pre_save(obj, True), connection) for field in columns)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = None if ignore_conflicts else cursor.fetchall()
    for index, obj in enumerate(objs):
        if ids is not None:
            obj.pk = ids[index][0]
        obj._state.adding = False  # noqa: SLF001 - as Model.save leaves a stored instance
        obj._state.db = connection.alias  # noqa: SLF001
