"""Short-lived, single-use tokens that open a voice session (design notes §2): the widget's, and a
phone call's (``telephony``: handed to Twilio as a Media Streams parameter)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.core.cache import caches

from tenants.models import WidgetKey, normalize_origin
from voice.protocol import CloseCode

TOKEN_TTL_S = 60
_SALT = "aura.voice.session.v1"
_CALL_SALT = "aura.voice.call.v1"


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
    return _sign(payload, _SALT), grant


def redeem_token(token: str, *, origin: str) -> SessionGrant:
    """Check signature, age, origin and single use; raise TokenError with the close code to send."""
    payload = _unsign(token, _SALT)
    if normalize_origin(origin) != normalize_origin(payload["o"]):
        raise TokenError(CloseCode.ORIGIN_NOT_ALLOWED, "origin does not match the token")
    _use_once(payload)
    return SessionGrant(
        widget_key=payload["k"],
        organization_id=payload["t"],
        assistant_id=payload["a"],
        origin=payload["o"],
        conversation_id=payload["c"],
        visitor_id=payload["v"],
        resumed=bool(payload.get("r")),
    )


@dataclass(frozen=True, slots=True)
class CallGrant:
    """What a phone call's stream token allows: one conversation with the number's assistant, for one call."""

    phone_number_id: int
    organization_id: int
    assistant_id: int
    call_sid: str
    caller: str  # E.164 as Twilio sent it; stored only as the organization's privacy setting allows
    conversation_id: str


def issue_call_token(
    *, phone_number_id: int, organization_id: int, assistant_id: int, call_sid: str, caller: str
) -> tuple[str, CallGrant]:
    grant = CallGrant(
        phone_number_id=phone_number_id,
        organization_id=organization_id,
        assistant_id=assistant_id,
        call_sid=call_sid,
        caller=caller[:32],
        conversation_id=str(uuid.uuid4()),
    )
    payload = {
        "p": grant.phone_number_id,
        "t": grant.organization_id,
        "a": grant.assistant_id,
        "s": grant.call_sid,
        "f": grant.caller,
        "c": grant.conversation_id,
        "n": secrets.token_urlsafe(12),
    }
    return _sign(payload, _CALL_SALT), grant


def redeem_call_token(token: str, *, call_sid: str) -> CallGrant:
    """Check signature, age, the call and single use; raise TokenError with the close code to send. A token
    shown for another call is refused before it is used, so it stays good for its own call's stream."""
    payload = _unsign(token, _CALL_SALT)
    if payload.get("s") != call_sid:
        raise TokenError(CloseCode.INVALID_TOKEN, "the token belongs to another call")
    _use_once(payload)
    return CallGrant(
        phone_number_id=payload["p"],
        organization_id=payload["t"],
        assistant_id=payload["a"],
        call_sid=payload["s"],
        caller=payload["f"],
        conversation_id=payload["c"],
    )


def _sign(payload: dict[str, object], salt: str) -> str:
    return signing.TimestampSigner(salt=salt).sign_object(payload, compress=True)


def _unsign(token: str, salt: str) -> dict[str, Any]:
    if not token:
        raise TokenError(CloseCode.INVALID_TOKEN, "missing token")
    try:
        payload = signing.TimestampSigner(salt=salt).unsign_object(token, max_age=TOKEN_TTL_S)
    except signing.SignatureExpired:
        raise TokenError(CloseCode.TOKEN_EXPIRED, "token expired") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise TokenError(CloseCode.INVALID_TOKEN, "invalid token") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        raise TokenError(CloseCode.INVALID_TOKEN, "invalid token")
    return payload


def _use_once(payload: dict[str, Any]) -> None:
    if not caches["platform"].add(f"voice-token-used:{payload['n']}", 1, timeout=TOKEN_TTL_S * 2):
        raise TokenError(CloseCode.TOKEN_USED, "token already used")
