"""Secrets at rest (tenants' provider keys): Fernet with a rotatable key list.

``AURA_ENCRYPTION_KEYS`` holds one or more Fernet keys, newest first. Values are encrypted with the
first and decrypted with any of them, so a new key is added in front, ``manage.py
rotate_encryption_keys`` re-encrypts everything with it, and then the old key can be dropped.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionError(Exception):
    """A stored secret no configured key can open (the key that sealed it was removed)."""


def development_key(secret_key: str) -> str:
    """A stable key derived from SECRET_KEY, for development and tests only."""
    return base64.urlsafe_b64encode(hashlib.sha256(b"aura-encryption:" + secret_key.encode()).digest()).decode()


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.AURA_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("no configured encryption key opens this value") from None


def reencrypt(token: str) -> str:
    """The same secret sealed with the newest key (``MultiFernet.rotate``)."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("no configured encryption key opens this value") from None


def mask(secret: str) -> str:
    """What a key may look like on screen: its start and its last four characters."""
    if len(secret) <= 16:  # too short to show seven characters of it
        return "••••"
    return f"{secret[:3]}…{secret[-4:]}"


class Secret(str):
    """A string whose repr is masked, so it never shows in a dataclass's repr, a container printed
    whole or a traceback's locals. ``str()`` is the key itself: never format it into a message
    (log redaction of ``sk-``/``xai-`` keys is only a backstop)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Secret({mask(str.__str__(self))!r})"
