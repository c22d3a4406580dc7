"""manage.py rotate_encryption_keys: re-seal every organization's provider keys (and its Twilio auth
tokens and widget keys' identity secrets, public schema) with the newest key (``aura.workflows.encryption``).

Rotation: put a new Fernet key first in AURA_ENCRYPTION_KEYS (keep the old one after it), deploy,
run this command, then remove the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aura.workflows.encryption import RotationError, rotate_encryption_keys


class Command(BaseCommand):
    help = "Re-encrypt every organization's provider keys with the first key of AURA_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rotate_encryption_keys(progress=self._progress)
        except RotationError as exc:
            raise CommandError(f"{exc}. Put back the key that sealed it, then run again.") from None

    def _progress(self, where: str, count: int) -> None:
        if where == "provider keys":
            self.stdout.write(self.style.SUCCESS(f"{count} provider key(s) now sealed with the newest key"))
        elif where == "Twilio auth tokens":
            self.stdout.write(self.style.SUCCESS(f"{count} Twilio auth token(s) now sealed with the newest key"))
        elif where == "widget identity secrets":
            self.stdout.write(self.style.SUCCESS(f"{count} widget identity secret(s) now sealed with the newest key"))
        elif count:
            self.stdout.write(f"{where}: {count} key(s) re-encrypted")
