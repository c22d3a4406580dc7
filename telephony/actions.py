"""Writes of phone numbers and calls (public schema)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.actions import do_record_call_usage
from billing.sessions import hold_slot_sync, release_slot_sync
from conversations.privacy import redact
from core.crypto import encrypt, mask, reencrypt
from telephony.models import PENDING_SID_PREFIX, Call, Direction, PhoneNumber
from tenants.models import Organization
from webhooks.actions import do_emit_event
from webhooks.models import EventType


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


# How long a placed call holds its session slot before its stream takes it over: Twilio rings for 60 s by
# default, then the answered call fetches the voice webhook and opens its stream. A call still unanswered by
# then lets its slot lapse; an ended call gives it back at once.
RING_SLOT_S = 180


def call_slot(call_id: int) -> str:
    """The session slot an outbound call holds while it rings; its media stream's session takes it over."""
    return f"call:{call_id}"


ENDED_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
ANSWERED_STATUSES = frozenset({"in-progress", "answered"})


@transaction.atomic
def do_start_inbound_call(*, number: PhoneNumber, call_sid: str, caller: str) -> Call:
    """The call Twilio announced on the voice webhook, answered now (a retried webhook finds the same row)."""
    call, created = Call.objects.get_or_create(
        call_sid=call_sid,
        defaults={
            "organization": number.organization,
            "phone_number": number,
            "direction": Direction.INBOUND,
            "from_number": shown_number(number.organization, caller),
            "to_number": number.number,
            "status": "in-progress",
            "answered_at": timezone.now(),
        },
    )
    if created:
        _emit(EventType.CALL_STARTED, call)
    return call


def do_place_call(
    *, number: PhoneNumber, to: str, first_message: str = "", metadata: dict[str, object] | None = None
) -> Call:
    """Ask Twilio to call ``to`` from ``number``; when answered, Twilio fetches the voice webhook, which
    connects the call to the number's assistant (saying ``first_message`` first, if given).

    The call is stored (committed) before Twilio is asked, with a pending SID, and its webhook URLs name
    the row (``?call=<id>``), so a status callback that beats Twilio's answer still finds it. Twilio is
    asked outside any transaction. If Twilio refuses (or cannot be reached) the row is kept, ``failed``,
    and the error is raised."""
    from telephony.queries import status_callback_url, twilio_account, webhook_url
    from telephony.twilio_api import place_call

    with transaction.atomic():  # no row without a slot: refused (SessionRefusedError), nothing is stored
        call = Call.objects.create(
            organization=number.organization,
            phone_number=number,
            call_sid=PENDING_SID_PREFIX + uuid.uuid4().hex,
            direction=Direction.OUTBOUND,
            from_number=number.number,
            to_number=shown_number(number.organization, to),
            status="queued",
            first_message=first_message,
            metadata=metadata or {},
        )
        hold_slot_sync(number.organization_id, call_slot(call.pk), ttl_s=RING_SLOT_S)
    try:
        call_sid = place_call(
            twilio_account(number),
            from_=number.number,
            to=to,
            url=f"{webhook_url()}?call={call.pk}",
            status_callback=f"{status_callback_url()}?call={call.pk}",
        )
    except BaseException:
        Call.objects.filter(pk=call.pk, ended_at__isnull=True).update(status="failed", ended_at=timezone.now())
        release_slot_sync(number.organization_id, call_slot(call.pk))
        raise
    do_adopt_call_sid(call_id=call.pk, call_sid=call_sid)
    call.refresh_from_db()
    return call


def do_adopt_call_sid(*, call_id: int, call_sid: str) -> bool:
    """Give a placed call Twilio's SID (from its answer, or from a webhook that came first). Once only."""
    return bool(Call.objects.filter(pk=call_id, call_sid__startswith=PENDING_SID_PREFIX).update(call_sid=call_sid[:64]))


def do_claim_call(*, call_sid: str, organization_id: int, phone_number_id: int, conversation_id: str) -> Call | None:
    """A media stream takes its call, once: the call must be the token's organization's and number's, not
    ended, and not yet have a conversation (one atomic UPDATE, so two streams cannot both take it).
    Returns the call, or None when it cannot be taken."""
    claimed = Call.objects.filter(
        call_sid=call_sid,
        organization_id=organization_id,
        phone_number_id=phone_number_id,
        conversation_id__isnull=True,
        ended_at__isnull=True,
    ).update(conversation_id=conversation_id, streamed_at=timezone.now())
    return Call.objects.filter(call_sid=call_sid).first() if claimed else None


@transaction.atomic
def do_update_call_status(
    *, call_sid: str, status: str, duration_s: int | None = None, stream_ended: bool = False
) -> Call | None:
    """A status Twilio reported (status callback, with its ``CallDuration`` at the end), or the end of the
    media stream (``stream_ended``, status ``completed``).

    ``call.started`` fires once, when the call is first answered; ``call.ended`` once, when it first
    ends. Billed seconds (``duration_s``) are this platform's own measurement of the media stream, from
    the stream taking the call to its end. Twilio's report can only confirm or lengthen them (a transferred
    call goes on at Twilio after its stream), never shorten them: a tenant signs its own account's callbacks,
    so its reports are not trusted to lower a bill. A call that never streamed is billed from the report.
    """
    call = Call.objects.select_for_update(of=("self",)).select_related("phone_number").filter(call_sid=call_sid).first()
    if call is None:
        return None
    now = timezone.now()
    fields: set[str] = set()
    if call.ended_at is None:  # an ended call keeps the status it ended with (reports may arrive late)
        call.status, fields = status[:16], {"status"}
    if status in ANSWERED_STATUSES and call.answered_at is None and call.ended_at is None:
        call.answered_at = now
        fields.add("answered_at")
        _emit(EventType.CALL_STARTED, call)
    if stream_ended and call.streamed_at is not None and call.measured_s is None:
        call.measured_s = max(0, round((now - call.streamed_at).total_seconds()))
        fields.add("measured_s")
    if status in ENDED_STATUSES:
        billed = max(call.duration_s or 0, call.measured_s or 0, duration_s or 0)
        rebilled = billed > (call.duration_s or 0)
        if rebilled:
            call.duration_s = billed
            fields.add("duration_s")
        if call.ended_at is None:
            call.ended_at = now
            fields.add("ended_at")
            _emit(EventType.CALL_ENDED, call)
            if call.conversation_id is None and call.direction == Direction.OUTBOUND:
                release_slot_sync(call.organization_id, call_slot(call.pk))  # rang out: no session took it
        if rebilled:
            do_record_call_usage(
                organization_id=call.organization_id,
                call_sid=call.call_sid,
                outbound=call.direction == Direction.OUTBOUND,
                seconds=billed,
                occurred_at=call.ended_at,
                assistant_id=call.phone_number.assistant_id if call.phone_number else None,
                conversation_id=call.conversation_id,
            )
    if fields:
        call.save(update_fields=sorted(fields))
    return call


def do_end_call(*, call_sid: str) -> None:
    """The media stream closed: the call is over for the assistant, and its stream measured (Twilio's own
    report may follow, and may only lengthen the billed time)."""
    do_update_call_status(call_sid=call_sid, status="completed", stream_ended=True)


def do_end_unclaimed_call(*, call_sid: str, organization_id: int) -> None:
    """A stream for this call was refused before it took the call: the call ends (``failed``) unless a
    stream has it, so no call is left open. Twilio's own report, if it comes, fills in the duration."""
    if Call.objects.filter(
        call_sid=call_sid, organization_id=organization_id, conversation_id__isnull=True, ended_at__isnull=True
    ).exists():
        do_update_call_status(call_sid=call_sid, status="failed")


def do_end_stale_calls(*, now: datetime | None = None) -> int:
    """End calls left open: no stream took them within TELEPHONY_UNSTREAMED_CALL_S (the stream never
    connected, or was refused before this was handled), or open longer than TELEPHONY_CALL_MAX_S (the
    process that streamed them died). They end ``failed`` without a measured duration (Twilio's report,
    if it comes, bills it). Returns how many; run by Celery beat (``telephony.end_stale_calls``)."""
    now = now or timezone.now()
    stale = Call.objects.filter(ended_at__isnull=True).filter(
        Q(conversation_id__isnull=True, started_at__lt=now - timedelta(seconds=settings.TELEPHONY_UNSTREAMED_CALL_S))
        | Q(started_at__lt=now - timedelta(seconds=settings.TELEPHONY_CALL_MAX_S))
    )
    ended = 0
    for call_sid in stale.values_list("call_sid", flat=True)[:1000]:
        do_update_call_status(call_sid=call_sid, status="failed")
        ended += 1
    return ended


def do_forget_calls(*, organization_id: int, conversation_ids: list[uuid.UUID | str]) -> int:
    """A caller asked to be forgotten: the organization's calls of these conversations keep no caller's or
    callee's number (the organization's own number stays), first message or metadata. Returns how many."""
    calls = Call.objects.filter(organization_id=organization_id, conversation_id__in=conversation_ids)
    inbound = calls.filter(direction=Direction.INBOUND).update(from_number="", first_message="", metadata={})
    outbound = calls.filter(direction=Direction.OUTBOUND).update(to_number="", first_message="", metadata={})
    return inbound + outbound


def do_apply_call_retention(*, organization: Organization, now: datetime | None = None) -> int:
    """The organization's retention period applies to its calls as to its conversations: ended calls
    that started before it are deleted. Returns how many."""
    if not organization.retention_days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=organization.retention_days)
    deleted, _ = Call.objects.filter(organization=organization, started_at__lt=cutoff, ended_at__isnull=False).delete()
    return deleted


def call_data(call: Call) -> dict[str, object]:
    return {
        "sid": call.call_sid,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "status": call.status,
        "conversation_id": str(call.conversation_id) if call.conversation_id else None,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "duration_s": call.duration_s,
        "metadata": call.metadata,
    }


def _emit(event_type: str, call: Call) -> None:
    do_emit_event(event_type, {"call": call_data(call)}, organization=call.organization)
