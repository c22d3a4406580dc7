"""manage.py seed_demo: the demo organization and the platform staff account, if missing."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from aura.workflows.organizations import open_organization
from tenants.actions import NewOrganization, do_allow_widget_origin, do_create_widget_key
from tenants.models import Organization
from tenants.queries import organization_by_slug, widget_keys_of
from voice.queries import default_assistant_id

DEMO_SLUG = "demo"


def demo_admin_email() -> str:
    return os.environ.get("AURA_DEMO_ADMIN_EMAIL", "admin@demo.example")


def demo_password() -> str:
    return os.environ.get("AURA_DEMO_PASSWORD", "aura-demo-2026")


def staff_username() -> str:
    return os.environ.get("AURA_STAFF_USERNAME", "staff")


class Command(BaseCommand):
    help = "Seed the demo organization (slug 'demo') and a platform staff superuser. Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username=staff_username()).exists():
            user_model.objects.create_superuser(
                username=staff_username(), email=f"{staff_username()}@aura.example", password=demo_password()
            )
            self.stdout.write(f"Created platform staff account {staff_username()}")
        if organization_by_slug(DEMO_SLUG) is None:
            open_organization(
                NewOrganization(
                    name="Demo Bistro", slug=DEMO_SLUG, admin_email=demo_admin_email(), admin_password=demo_password()
                )
            )
            self.stdout.write("Created demo organization")
            _furnish(organization_by_slug(DEMO_SLUG))
        demo = organization_by_slug(DEMO_SLUG)
        keys = widget_keys_of(demo)
        if not keys:  # a demo organization seeded before widget keys existed
            with tenant_context(demo):
                assistant_id = default_assistant_id()
            keys = [do_create_widget_key(demo, assistant_id=assistant_id)]
        # The demo page is served by the platform itself: let the demo key work there.
        do_allow_widget_origin(keys[0], settings.AURA_PLATFORM_URL)


DEMO_HOURS = {day: [["09:00", "22:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")} | {
    "sun": [["11:00", "22:00"]]
}
DEMO_FAQ = """# Demo Bistro

## Menu
We cook French bistro classics from local produce. Vegan dishes: a lentil stew, a mushroom risotto and a
seasonal vegetable curry, marked with a green leaf on the menu. Every dish can be made gluten free on request.

## Bookings and groups
Tables can be booked for up to twelve people. Groups larger than twelve book the private room upstairs,
which seats thirty.

## Getting here
We are at 12 Rue des Demos, next to the market hall. There is free parking behind the restaurant for twenty cars.
"""


def _furnish(demo: Organization) -> None:
    """The demo shows the product: opening hours, every built-in tool, and a small knowledge base."""
    from knowledge.actions import do_add_document
    from voice.models import Assistant, BuiltinTool

    Organization.objects.filter(pk=demo.pk).update(time_zone="Europe/Paris", business_hours=DEMO_HOURS)
    with tenant_context(demo):
        Assistant.objects.filter(is_default=True).update(tools=list(BuiltinTool.values))
        do_add_document(title="Demo Bistro FAQ", text=DEMO_FAQ)
