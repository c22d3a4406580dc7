"""Writes of phone numbers and calls (public schema)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from aura.crypto import encrypt, mask, reencrypt
from conversations.privacy import redact
from telephony.models import Call, Direction, PhoneNumber
from tenants.models import Organization


def seal_auth_token(number: PhoneNumber, auth_token: str) -> None:
    """Put the tenant's Twilio auth token into ``number``, encrypted, with its masked hint (the caller saves)."""
    number.encrypted_auth_token = encrypt(auth_token)
    number.auth_token_hint = mask(auth_token)


def do_reencrypt_auth_tokens() -> int:
    """Re-seal every stored Twilio auth token with the newest encryption key. Returns how many."""
    count = 0
    with transaction.atomic():
        for number in PhoneNumber.objects.select_for_update().exclude(encrypted_auth_token=""):
            number.encrypted_auth_token = reencrypt(number.encrypted_auth_token)
            number.save(update_fields=["encrypted_auth_token", "updated_at"])
            count += 1
    return count


def shown_number(organization: Organization, number: str) -> str:
    """A caller's number as the organization's privacy setting allows it to be stored."""
    return redact(number) if organization.redact_personal_data else number


def do_start_inbound_call(*, number: PhoneNumber, call_sid: str, caller: str) -> Call:
    """The call Twilio announced on the voice webhook (a retried webhook finds the same row)."""
    call, _ = Call.objects.get_or_create(
        call_sid=call_sid,
        defaults={
            "organization": number.organization,
            "phone_number": number,
            "direction": Direction.INBOUND,
            "from_number": shown_number(number.organization, caller),
            "to_number": number.number,
            "status": "in-progress",
        },
    )
    return call


def do_attach_conversation(*, call_sid: str, conversation_id: str) -> None:
    Call.objects.filter(call_sid=call_sid, conversation_id__isnull=True).update(conversation_id=conversation_id)


def do_end_call(*, call_sid: str, status: str = "completed", duration_s: int | None = None) -> None:
    Call.objects.filter(call_sid=call_sid, ended_at__isnull=True).update(
        status=status, ended_at=timezone.now(), duration_s=duration_s
    )
