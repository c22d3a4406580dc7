"""Rotating the encryption keys: every secret sealed with ``core.crypto`` re-sealed with the newest key.

Rotation: put a new Fernet key first in AURA_ENCRYPTION_KEYS (keep the old one after it), deploy,
run ``manage.py rotate_encryption_keys``, then remove the old key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django_tenants.utils import get_tenant_model, tenant_context

from core.crypto import DecryptionError
from telephony.actions import do_reencrypt_auth_tokens
from tenants.actions import do_reencrypt_widget_identity_secrets
from voice.actions import do_reencrypt_provider_keys


class RotationError(Exception):
    """A secret that none of AURA_ENCRYPTION_KEYS opens; ``where`` names the schema or the kind of secret."""

    def __init__(self, where: str, error: DecryptionError) -> None:
        super().__init__(f"{where}: {error}")
        self.where = where


@dataclass(frozen=True, slots=True)
class Resealed:
    provider_keys: int
    auth_tokens: int
    identity_secrets: int


def _ignore(_where: str, _count: int) -> None:
    return None


def rotate_encryption_keys(*, progress: Callable[[str, int], None] = _ignore) -> Resealed:
    """Each organization's provider keys (in its schema, one transaction each), then every phone
    number's Twilio auth token and every widget key's identity secret (public schema).
    ``progress(where, count)`` hears each step as it ends: a schema name, then "provider keys" with the
    total, then "Twilio auth tokens", then "widget identity secrets".
    Stops at the first secret no key opens (``RotationError``); what was re-sealed stays so."""
    total = 0
    for organization in get_tenant_model().objects.exclude(schema_name="public").order_by("schema_name"):
        with tenant_context(organization), transaction.atomic():
            try:
                count = do_reencrypt_provider_keys()
            except DecryptionError as exc:
                raise RotationError(organization.schema_name, exc) from None
        total += count
        progress(organization.schema_name, count)
    progress("provider keys", total)
    try:
        tokens = do_reencrypt_auth_tokens()
    except DecryptionError as exc:
        raise RotationError("Twilio auth tokens", exc) from None
    progress("Twilio auth tokens", tokens)
    try:
        identity = do_reencrypt_widget_identity_secrets()
    except DecryptionError as exc:
        raise RotationError("Widget identity secrets", exc) from None
    progress("widget identity secrets", identity)
    return Resealed(provider_keys=total, auth_tokens=tokens, identity_secrets=identity)
