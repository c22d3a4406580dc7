"""Secrets at rest: Fernet sealing, key rotation, masking, and a str that never shows itself."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.test import override_settings

from core.crypto import DecryptionError, Secret, decrypt, encrypt, mask, reencrypt

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def _new_key() -> str:
    return Fernet.generate_key().decode()


def test_a_value_round_trips():
    assert decrypt(encrypt(KEY)) == KEY
    assert decrypt(encrypt("")) == ""
    assert decrypt(encrypt("clé-ünïcødé-🔑")) == "clé-ünïcødé-🔑"


def test_the_ciphertext_does_not_contain_the_plaintext():
    token = encrypt(KEY)

    assert KEY not in token
    assert KEY[-12:] not in token
    assert isinstance(token, str) and token.isascii()


def test_two_encryptions_of_the_same_value_differ():
    assert encrypt(KEY) != encrypt(KEY)


def test_rotation_a_new_key_in_front_opens_old_values_and_reencrypt_seals_with_it():
    old, new = _new_key(), _new_key()
    with override_settings(AURA_ENCRYPTION_KEYS=[old]):
        sealed_old = encrypt(KEY)

    with override_settings(AURA_ENCRYPTION_KEYS=[new, old]):
        assert decrypt(sealed_old) == KEY  # the old key still opens it
        sealed_new = reencrypt(sealed_old)
        assert sealed_new != sealed_old
        fresh = encrypt(KEY)  # new values are sealed with the first key

    with override_settings(AURA_ENCRYPTION_KEYS=[new]):  # the old key dropped
        assert decrypt(sealed_new) == KEY
        assert decrypt(fresh) == KEY
        with pytest.raises(DecryptionError):
            decrypt(sealed_old)


def test_a_value_sealed_by_a_removed_key_raises_decryption_error():
    removed, current = _new_key(), _new_key()
    with override_settings(AURA_ENCRYPTION_KEYS=[removed]):
        token = encrypt(KEY)

    with override_settings(AURA_ENCRYPTION_KEYS=[current]):
        with pytest.raises(DecryptionError) as caught:
            decrypt(token)
        with pytest.raises(DecryptionError):
            reencrypt(token)
    assert KEY not in str(caught.value)
    assert caught.value.__cause__ is None  # `from None`: the InvalidToken chain is not shown


def test_garbage_raises_decryption_error():
    with pytest.raises(DecryptionError):
        decrypt("not-a-fernet-token")


def test_the_default_test_key_is_configured():
    assert settings.AURA_ENCRYPTION_KEYS
    assert decrypt(encrypt("x")) == "x"


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (KEY, "sk-…6789"),
        ("xai-1234567890ABCDEF", "xai…CDEF"),
    ],
)
def test_mask_shows_only_the_first_three_and_the_last_four_characters(secret, expected):
    masked = mask(secret)

    assert masked == expected
    assert secret not in masked
    assert secret[3:-4] not in masked


@pytest.mark.parametrize("secret", ["", "a", "abcd", "12345678", "123456789", "sixteen-chars-ab"])
def test_mask_shows_nothing_of_a_short_key(secret):
    masked = mask(secret)

    assert masked == "••••"
    assert not any(char in masked for char in secret)


def test_a_secret_never_shows_in_a_repr_but_is_still_the_string():
    secret = Secret(KEY)

    assert KEY not in repr(secret)
    assert repr(secret) == "Secret('sk-…6789')"
    assert KEY not in f"{[secret]}"
    assert KEY not in f"{ {'openai': secret} }"
    assert KEY not in f"{secret!r}"
    assert KEY not in str((secret,))

    assert str(secret) == KEY
    assert type(str(secret)) is str
    assert f"{secret}" == KEY
    assert secret == KEY
    assert {KEY: "found"}[secret] == "found"
    assert hash(secret) == hash(KEY)
    assert isinstance(secret, str)
    assert f"Bearer {secret}" == f"Bearer {KEY}"
