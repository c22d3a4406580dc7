"""manage.py create_organization --name … --slug … --admin-email … --admin-password …"""

from __future__ import annotations

import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from aura.workflows.organizations import open_organization
from tenants.actions import NewOrganization
from tenants.queries import tenant_url


class Command(BaseCommand):
    help = "Open an organization: its schema (cloned from the template), domain, first admin and default assistant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True, help="3–40 lowercase letters, digits and hyphens")
        parser.add_argument("--admin-email", default="")
        parser.add_argument("--admin-password", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        new = NewOrganization(
            name=options["name"],
            slug=options["slug"],
            admin_email=options["admin_email"],
            admin_password=options["admin_password"],
        )
        started = time.perf_counter()
        try:
            organization = open_organization(new)
        except ValidationError as exc:
            lines = [f"  {field}: {message}" for field, messages in exc.message_dict.items() for message in messages]
            raise CommandError("Organization not created:\n" + "\n".join(lines)) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {organization.name} (schema {organization.schema_name}) in {elapsed_ms:.0f} ms: "
                f"admin at {tenant_url(organization, '/admin/')} as {new.admin_email}"
            )
        )
