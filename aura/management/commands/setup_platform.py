"""manage.py setup_platform: migrate every schema, make sure the platform host routes, seed billing's catalog.

Safe to run on every deploy and every `make run`: each step is idempotent, and tenants whose
migrations are all applied are skipped with one query.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from billing.actions import do_seed_catalog
from tenants.actions import do_ensure_platform_organization


class Command(BaseCommand):
    help = (
        "Migrate the public schema, the tenant template and every tenant; create the platform organization; "
        "add missing list prices and plans."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options.get("verbosity", 1))
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=max(verbosity - 1, 0))
        do_ensure_platform_organization()
        do_seed_catalog()  # list prices and plans that are missing
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=max(verbosity - 1, 0) or 1)
