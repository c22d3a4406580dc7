"""manage.py rotate_encryption_keys: re-seal every organization's provider keys (and its Twilio auth
tokens and widget keys' identity secrets, public schema) with the newest key.

Rotation: put a new Fernet key first in AURA_ENCRYPTION_KEYS (keep the old one after it), deploy,
run this command, then remove the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_tenants.utils import get_tenant_model, tenant_context

from aura.crypto import DecryptionError
from telephony.actions import do_reencrypt_auth_tokens
from tenants.actions import do_reencrypt_widget_identity_secrets
from voice.actions import do_reencrypt_provider_keys


class Command(BaseCommand):
    help = "Re-encrypt every organization's provider keys with the first key of AURA_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for organization in get_tenant_model().objects.exclude(schema_name="public").order_by("schema_name"):
            with tenant_context(organization), transaction.atomic():
                try:
                    count = do_reencrypt_provider_keys()
                except DecryptionError as exc:
                    raise CommandError(
                        f"{organization.schema_name}: {exc}. Put back the key that sealed it, then run again."
                    ) from None
            total += count
            if count:
                self.stdout.write(f"{organization.schema_name}: {count} key(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"{total} provider key(s) now sealed with the newest key"))
        try:
            tokens = do_reencrypt_auth_tokens()
        except DecryptionError as exc:
            raise CommandError(f"Twilio auth tokens: {exc}. Put back the key that sealed it, then run again.") from None
        self.stdout.write(self.style.SUCCESS(f"{tokens} Twilio auth token(s) now sealed with the newest key"))
        try:
            identity = do_reencrypt_widget_identity_secrets()
        except DecryptionError as exc:
            raise CommandError(
                f"Widget identity secrets: {exc}. Put back the key that sealed it, then run again."
            ) from None
        self.stdout.write(self.style.SUCCESS(f"{identity} widget identity secret(s) now sealed with the newest key"))
