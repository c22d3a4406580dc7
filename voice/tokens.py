"""Short-lived, single-use tokens that open a voice session (design notes §2): the widget's, and a
phone call's (``telephony``: handed to Twilio as a Media Streams parameter). And the widget's longer-lived
credentials: the anonymous visitor id the platform minted for a browser, a conversation's resume token,
and the check of a site's identity hash (docs/widget.md)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.core.cache import caches

from conversations.visitors import ANONYMOUS_PREFIX, InvalidVisitorIdError, check_visitor_id
from tenants.models import WidgetKey, normalize_origin
from tenants.queries import widget_identity_secret
from voice.protocol import CloseCode

TOKEN_TTL_S = 60
_SALT = "aura.voice.session.v1"
_CALL_SALT = "aura.voice.call.v1"
_VISITOR_SALT = "aura.widget.visitor.v1"
_RESUME_SALT = "aura.widget.resume.v1"
# A browser's anonymous id lasts as long as the browser keeps it: every session hands out a fresh token.
VISITOR_TOKEN_MAX_AGE_S = 400 * 24 * 3600
# Longer than any session (max_session_s) plus the resume window: the conversation's own state decides.
RESUME_TOKEN_MAX_AGE_S = 24 * 3600


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
    if visitor_id:  # the view checked it; refuse rather than cut what would be stored
        check_visitor_id(visitor_id, chosen_by_client=False)
    grant = SessionGrant(
        widget_key=key.key,
        organization_id=key.organization_id,
        assistant_id=key.assistant_id,
        origin=origin,
        conversation_id=resume_conversation_id or str(uuid.uuid4()),
        visitor_id=visitor_id,
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


# ---------------------------------------------------------------- the widget's visitor and resume credentials
def mint_anonymous_visitor() -> str:
    """A new anonymous widget visitor: ``anon:`` and 128 random bits (conversations.visitors)."""
    return ANONYMOUS_PREFIX + secrets.token_urlsafe(16)


def visitor_token(organization_id: int, visitor_id: str) -> str:
    """What the widget keeps (localStorage) and sends back to be the same anonymous visitor again."""
    return signing.TimestampSigner(salt=_VISITOR_SALT).sign_object({"t": organization_id, "v": visitor_id})


def anonymous_visitor(token: object, organization_id: int) -> str | None:
    """The anonymous visitor a ``visitor_token`` names, if the platform signed it for this organization
    and it is not too old; None for anything else (forged, altered, another organization's, expired)."""
    if not isinstance(token, str) or not token or len(token) > 512:
        return None
    try:
        payload = signing.TimestampSigner(salt=_VISITOR_SALT).unsign_object(token, max_age=VISITOR_TOKEN_MAX_AGE_S)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(payload, dict) or payload.get("t") != organization_id:
        return None
    visitor_id = payload.get("v")
    if not isinstance(visitor_id, str) or not visitor_id.startswith(ANONYMOUS_PREFIX):
        return None
    try:
        return check_visitor_id(visitor_id, chosen_by_client=False)
    except InvalidVisitorIdError:
        return None


def identity_hash(secret: str, visitor_id: str) -> str:
    """What a site computes on its server for a signed-in user: hex HMAC-SHA256 of the id (UTF-8) under the
    widget key's identity secret."""
    return hmac.new(secret.encode(), visitor_id.encode(), hashlib.sha256).hexdigest()


def identity_verified(secret: str, visitor_id: str, visitor_hash: object) -> bool:
    """True when ``visitor_hash`` is the identity hash of ``visitor_id`` under ``secret`` (constant time)."""
    if not secret or not isinstance(visitor_hash, str) or len(visitor_hash) != 64 or not visitor_hash.isascii():
        return False  # compare_digest refuses non-ASCII text (TypeError): such a hash is simply wrong
    return hmac.compare_digest(identity_hash(secret, visitor_id), visitor_hash.lower())


@dataclass(frozen=True, slots=True)
class WidgetVisitor:
    """Who a widget session's visitor is, as far as the platform can tell."""

    visitor_id: str
    verified: bool  # a site's signed-in user, vouched for with the key's identity secret
    token: str = ""  # for an anonymous visitor: what the widget keeps to be the same visitor next time


def identify_widget_visitor(
    key: WidgetKey, *, visitor_id: str = "", visitor_hash: object = None, token: object = None
) -> WidgetVisitor:
    """A site's signed-in user when ``visitor_hash`` verifies ``visitor_id`` under the key's identity secret;
    otherwise the anonymous visitor ``token`` names, or a new one. An id the browser chose is never taken
    on its word: without a valid hash it reaches no profile (the visitor is anonymous)."""
    if visitor_id and identity_verified(widget_identity_secret(key), visitor_id, visitor_hash):
        return WidgetVisitor(visitor_id=visitor_id, verified=True)
    anonymous = anonymous_visitor(token, key.organization_id) or mint_anonymous_visitor()
    return WidgetVisitor(visitor_id=anonymous, verified=False, token=visitor_token(key.organization_id, anonymous))


def resume_token(*, organization_id: int, conversation_id: str, visitor_id: str) -> str:
    """Handed to the session that began a conversation: only it may continue the conversation later."""
    payload = {"t": organization_id, "c": conversation_id, "v": visitor_id}
    return signing.TimestampSigner(salt=_RESUME_SALT).sign_object(payload)


def resume_allowed(token: object, *, organization_id: int, conversation_id: str, visitor_id: str) -> bool:
    """True when ``token`` was issued for this conversation, this visitor and this organization."""
    if not isinstance(token, str) or not token or len(token) > 512:
        return False
    try:
        payload = signing.TimestampSigner(salt=_RESUME_SALT).unsign_object(token, max_age=RESUME_TOKEN_MAX_AGE_S)
    except (signing.BadSignature, ValueError, TypeError):
        return False
    return payload == {"t": organization_id, "c": conversation_id, "v": visitor_id}


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
