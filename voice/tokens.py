"""Short-lived, single-use tokens that open a voice session (design notes §2)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from django.core import signing
from django.core.cache import caches

from tenants.models import WidgetKey, normalize_origin
from voice.protocol import CloseCode

TOKEN_TTL_S = 60
_SALT = "aura.voice.session.v1"


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """What a redeemed token allows: one conversation with one assistant, from one origin."""

    widget_key: str
    organization_id: int
    assistant_id: int
    origin: str
    conversation_id: str
    visitor_id: str
    resumed: bool = False


class TokenError(Exception):
    def __init__(self, close_code: CloseCode, message: str) -> None:
        super().__init__(message)
        self.close_code = close_code


def issue_token(
    key: WidgetKey, *, origin: str, visitor_id: str = "", resume_conversation_id: str | None = None
) -> tuple[str, SessionGrant]:
    """A token for a new conversation, or for continuing ``resume_conversation_id`` (already checked)."""
    grant = SessionGrant(
        widget_key=key.key,
        organization_id=key.organization_id,
        assistant_id=key.assistant_id,
        origin=origin,
        conversation_id=resume_conversation_id or str(uuid.uuid4()),
        visitor_id=visitor_id[:128],
        resumed=resume_conversation_id is not None,
    )
    payload = {
        "k": grant.widget_key,
        "t": grant.organization_id,
        "a": grant.assistant_id,
        "o": grant.origin,
        "c": grant.conversation_id,
        "v": grant.visitor_id,
        "r": grant.resumed,
        "n": secrets.token_urlsafe(12),
    }
    return signing.TimestampSigner(salt=_SALT).sign_object(payload, compress=True), grant


def redeem_token(token: str, *, origin: str) -> SessionGrant:
    """Check signature, age, origin and single use; raise TokenError with the close code to send."""
    if not token:
        raise TokenError(CloseCode.INVALID_TOKEN, "missing token")
    try:
        payload = signing.TimestampSigner(salt=_SALT).unsign_object(token, max_age=TOKEN_TTL_S)
    except signing.SignatureExpired:
        raise TokenError(CloseCode.TOKEN_EXPIRED, "token expired") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise TokenError(CloseCode.INVALID_TOKEN, "invalid token") from None
    if normalize_origin(origin) != normalize_origin(payload["o"]):
        raise TokenError(CloseCode.ORIGIN_NOT_ALLOWED, "origin does not match the token")
    if not caches["platform"].add(f"voice-token-used:{payload['n']}", 1, timeout=TOKEN_TTL_S * 2):
        raise TokenError(CloseCode.TOKEN_USED, "token already used")
    return SessionGrant(
        widget_key=payload["k"],
        organization_id=payload["t"],
        assistant_id=payload["a"],
        origin=payload["o"],
        conversation_id=payload["c"],
        visitor_id=payload["v"],
        resumed=bool(payload.get("r")),
    )
