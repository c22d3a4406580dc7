"""The one way async code (consumers, the voice pipeline) touches the ORM.

Django keeps the tenant on the per-thread connection. ``database_sync_to_async`` runs the call on
another thread, whose connection is still on the public schema: a query made there without
entering the tenant would silently read or write the platform's tables. ``run_in_tenant`` enters
``tenant_context`` inside the worker thread, around the call, every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django_tenants.utils import tenant_context

from tenants.models import Organization

P = ParamSpec("P")
R = TypeVar("R")


def _call_in_tenant(tenant: Organization, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    with tenant_context(tenant):
        return fn(*args, **kwargs)


async def run_in_tenant(tenant: Organization, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn(*args, **kwargs)`` on a database thread inside ``tenant``'s schema and return its result."""
    return await database_sync_to_async(_call_in_tenant)(tenant, fn, *args, **kwargs)


async def run_in_public(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn`` on a database thread in the public schema (platform data: keys, billing)."""
    from django.db import connection

    def call() -> R:
        connection.set_schema_to_public()
        return fn(*args, **kwargs)

    return await database_sync_to_async(call)()
