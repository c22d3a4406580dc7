"""Twilio's webhooks on the platform host: a call comes in or is answered (``/telephony/twilio/voice``), and
its status changes (``/telephony/twilio/status``)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_tenants.utils import tenant_context
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from billing.metrics import QUOTA_REFUSALS
from billing.sessions import SessionRefusedError, check_new_session, hold_slot_sync
from telephony.actions import (
    RING_SLOT_S,
    call_slot,
    do_adopt_call_sid,
    do_start_inbound_call,
    do_update_call_status,
)
from telephony.models import PhoneNumber
from telephony.queries import call_answerable, call_by_sid, phone_number, placed_call, stream_url, twilio_account
from voice.models import Assistant
from voice.tokens import issue_call_token

logger = logging.getLogger(__name__)

NOT_IN_SERVICE = "Sorry, this number is not in service. Goodbye."
UNAVAILABLE = "Sorry, this assistant is not available right now. Please call again later. Goodbye."


def _twiml(response: VoiceResponse, status: int = 200) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml", status=status)


def _spoken_refusal(message: str) -> HttpResponse:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return _twiml(response)


def signed_by_twilio(request: HttpRequest, auth_token: str) -> bool:
    """``X-Twilio-Signature`` checked with Twilio's validator against the URL Twilio called: the
    platform's public URL (AURA_PLATFORM_URL, right behind a TLS proxy), or the URL as this request
    sees it (which honours X-Forwarded-Proto when BEHIND_TLS_PROXY is set)."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not (signature and auth_token):
        return False
    validator = RequestValidator(auth_token)
    candidates = {settings.AURA_PLATFORM_URL + request.get_full_path(), request.build_absolute_uri()}
    return any(validator.validate(url, request.POST, signature) for url in candidates)


@csrf_exempt  # Twilio signs the request instead
@require_POST
def twilio_voice(request: HttpRequest) -> HttpResponse:
    """A call comes in (``To`` is one of our numbers), or a call we placed was answered (``Direction``
    ``outbound-api``, the call known by its SID): either way it is connected to the number's assistant."""
    called, caller, call_sid = (request.POST.get(k, "") for k in ("To", "From", "CallSid"))
    outbound = request.POST.get("Direction", "").startswith("outbound")
    placed = placed_call(call_sid, request.GET.get("call", "")) if outbound else None
    number = (placed.phone_number if placed else None) if outbound else phone_number(called)
    if not signed_by_twilio(request, twilio_account(number).auth_token):
        logger.info("voice webhook refused: missing or wrong X-Twilio-Signature (To=%s)", called)
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    if not call_sid or len(call_sid) > 64:
        return HttpResponse("CallSid missing", status=400, content_type="text/plain")
    if not _from_numbers_account(request, number):
        logger.info("voice webhook refused: AccountSid is not the account of %s", called)
        return HttpResponse("wrong account", status=403, content_type="text/plain")
    if number is None or not number.is_active:
        logger.info("voice webhook: %s is not a number in service", called)
        return _spoken_refusal(NOT_IN_SERVICE)
    if not call_answerable(placed if outbound else call_by_sid(call_sid), number):
        logger.info("voice webhook refused: call %s is not a new call of %s", call_sid, number.number)
        return HttpResponse("call already handled", status=409, content_type="text/plain")
    organization = number.organization
    if not organization.is_ready or not _assistant_exists(number):
        return _spoken_refusal(UNAVAILABLE)
    try:  # the plan's hard cap and concurrent sessions, before the call is connected to anything
        if placed is not None:  # a placed call has held its own slot since it was placed: renewed (or retaken)
            hold_slot_sync(organization.pk, call_slot(placed.pk), ttl_s=RING_SLOT_S)
        else:
            check_new_session(organization.pk)
    except SessionRefusedError as refused:
        QUOTA_REFUSALS.labels(refused.code).inc()
        logger.info("voice webhook: %s refused for %s: %s", called, organization.slug, refused.code)
        return _spoken_refusal(refused.message)
    token, _ = issue_call_token(
        phone_number_id=number.pk,
        organization_id=organization.pk,
        assistant_id=number.assistant_id,
        call_sid=call_sid,
        caller=called if outbound else caller,  # the other party
    )
    if outbound:
        if placed is not None and placed.call_sid != call_sid:
            do_adopt_call_sid(call_id=placed.pk, call_sid=call_sid)
        do_update_call_status(call_sid=call_sid, status="in-progress")
    else:
        do_start_inbound_call(number=number, call_sid=call_sid, caller=caller)
    response = VoiceResponse()
    connect = Connect()
    connect.stream(url=stream_url()).parameter(name="token", value=token)
    response.append(connect)
    return _twiml(response)


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Twilio's status callback: the call's progress (``CallStatus``, ``CallDuration`` at the end)."""
    call_sid = request.POST.get("CallSid", "")[:64]
    call = placed_call(call_sid, request.GET.get("call", "")) if call_sid else None
    if not signed_by_twilio(request, twilio_account(call.phone_number if call else None).auth_token):
        logger.info("status callback refused: missing or wrong X-Twilio-Signature (%s)", call_sid)
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    if call is not None and not _from_numbers_account(request, call.phone_number):
        logger.info("status callback refused: AccountSid is not the call's account (%s)", call_sid)
        return HttpResponse("wrong account", status=403, content_type="text/plain")
    if call is None:
        return HttpResponse(status=204)  # not one of ours (any more): nothing to update
    if call.call_sid != call_sid:  # it beat Twilio's answer to our request: the call learns its SID here
        do_adopt_call_sid(call_id=call.pk, call_sid=call_sid)
    duration = request.POST.get("CallDuration", "")
    do_update_call_status(
        call_sid=call_sid,
        status=request.POST.get("CallStatus", "")[:16],
        duration_s=int(duration) if duration.isascii() and duration.isdigit() and len(duration) < 9 else None,
    )
    return HttpResponse(status=204)


def _from_numbers_account(request: HttpRequest, number: PhoneNumber | None) -> bool:
    """Twilio names the account a call belongs to (``AccountSid``): it must be the account that holds the
    number (the tenant's own, or the platform's), so a number can only be used from its own account."""
    if number is None:
        return True  # refused later as not in service
    return request.POST.get("AccountSid", "") == twilio_account(number).account_sid


def _assistant_exists(number: PhoneNumber) -> bool:
    with tenant_context(number.organization):
        return Assistant.objects.filter(pk=number.assistant_id).exists()
