"""Writes to assistants. Run inside the tenant's schema."""

from __future__ import annotations

from django.db import transaction

from voice.models import Assistant


@transaction.atomic
def do_create_default_assistant(*, organization_name: str) -> Assistant:
    return Assistant.objects.create(
        name=f"{organization_name} assistant",
        greeting=f"Hello, thanks for reaching {organization_name}. How can I help?",
        is_default=True,
    )
