"""Reads of phone numbers and their Twilio credentials; the number lookup every call goes through is cached."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from conversations.visitors import PHONE_PREFIX
from core.crypto import Secret, decrypt
from telephony.cache import _number_cache_key, forget_cached_number
from telephony.models import PENDING_SID_PREFIX, Call, PhoneNumber
from tenants.models import Organization
from tenants.queries import platform_cached

WEBHOOK_PATH = "/telephony/twilio/voice"
STATUS_PATH = "/telephony/twilio/status"
STREAM_PATH = "/ws/twilio/"


def phone_number(number: str) -> PhoneNumber | None:
    """The phone number (active or not) with its organization, or None. Cached; dropped when it is saved."""
    if not number.startswith("+") or len(number) > 16:
        return None
    return platform_cached(
        _number_cache_key(number),
        lambda: PhoneNumber.objects.select_related("organization").filter(number=number).first(),
    )


def forget_cached_numbers_of(organization: Organization) -> None:
    """The organization changed: its numbers' cached rows carry its settings (registered with tenants)."""
    for number in PhoneNumber.objects.filter(organization=organization).values_list("number", flat=True):
        forget_cached_number(number)


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    account_sid: str
    auth_token: Secret

    @property
    def configured(self) -> bool:
        return bool(self.account_sid and self.auth_token)


def platform_account() -> TwilioAccount:
    return TwilioAccount(settings.TWILIO_ACCOUNT_SID, Secret(settings.TWILIO_AUTH_TOKEN))


def twilio_account(number: PhoneNumber | None) -> TwilioAccount:
    """The tenant's own Twilio account for this number, or the platform's when it has none."""
    if number is not None and number.uses_own_account:
        return TwilioAccount(number.account_sid, Secret(decrypt(number.encrypted_auth_token)))
    return platform_account()


def destination_refusal(number: PhoneNumber, to: str) -> str:
    """Why a call from ``number`` may not go to ``to`` (an outbound call or a transfer), or "" when it may:
    only to the number's countries (telephony.destinations), never to premium-rate or special numbers."""
    from telephony.destinations import allowed_countries
    from telephony.destinations import destination_refusal as refusal

    allowed = allowed_countries(number.number, number.call_countries, platform_account=not number.uses_own_account)
    return refusal(to, allowed)


def destination_allowed(number: PhoneNumber, to: str) -> bool:
    return not destination_refusal(number, to)


def webhook_url() -> str:
    """What a tenant pastes into Twilio's console ("A call comes in"): on the platform's public URL."""
    return settings.AURA_PLATFORM_URL + WEBHOOK_PATH


def status_callback_url() -> str:
    return settings.AURA_PLATFORM_URL + STATUS_PATH


def stream_url() -> str:
    """The Media Streams WebSocket on the platform's public URL (https → wss)."""
    base = settings.AURA_PLATFORM_URL
    scheme, _, rest = base.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{STREAM_PATH}"


def call_by_sid(call_sid: str) -> Call | None:
    return Call.objects.select_related("organization", "phone_number").filter(call_sid=call_sid).first()


def placed_call(call_sid: str, call_id: str) -> Call | None:
    """An outbound call a webhook names: by its SID, or (before Twilio's answer gave us the SID) by the row
    id its webhook URLs carry, while that row still waits for a SID."""
    if call_sid and (call := call_by_sid(call_sid)) is not None:
        return call
    if not (call_id.isascii() and call_id.isdigit()) or len(call_id) > 18:
        return None
    return (
        Call.objects.select_related("organization", "phone_number")
        .filter(pk=int(call_id), call_sid__startswith=PENDING_SID_PREFIX)
        .first()
    )


def call_answerable(call: Call | None, number: PhoneNumber) -> bool:
    """Whether a webhook for ``call`` may connect it to ``number``'s assistant: a new call, or a retried
    webhook of this number's call that has no stream yet. A call SID of another organization or number,
    an ended call or one already talking is refused (a replayed webhook mints no token for it)."""
    if call is None:
        return True
    return (
        call.organization_id == number.organization_id
        and call.phone_number_id == number.pk
        and call.ended_at is None
        and call.conversation_id is None
    )


def numbers_of(organization_id: int) -> list[PhoneNumber]:
    return list(PhoneNumber.objects.filter(organization_id=organization_id).order_by("number"))


def active_number_by_id(number_id: int) -> PhoneNumber | None:
    """The number a stream token names, if it still answers calls (active, organization ready)."""
    return (
        PhoneNumber.objects.select_related("organization")
        .filter(pk=number_id, is_active=True, organization__is_ready=True)
        .first()
    )


def caller_visitor_id(caller: str) -> str:
    """A stable visitor id for a caller's number (so the assistant can remember returning callers),
    without the number itself: a keyed hash."""
    from django.utils.crypto import salted_hmac

    if not caller:
        return ""
    return PHONE_PREFIX + salted_hmac("aura.telephony.caller", caller, algorithm="sha256").hexdigest()[:32]
