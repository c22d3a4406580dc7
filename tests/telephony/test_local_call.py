"""Calling an assistant without Twilio (manage.py call_assistant): a development number nobody checks
with Twilio, refused anywhere but in development, and a call through the real webhook and media stream."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from conversations.models import Turn
from telephony.local_call import (
    NotInDevelopmentError,
    call,
    caller_audio,
    development_number_of,
    do_connect_development_number,
    ring,
)
from telephony.models import Call, PhoneNumber
from tests.telephony.conftest import first_assistant
from voice.models import Assistant

HOURS = Path(__file__).resolve().parents[1] / "fixtures" / "speech" / "hours.wav"


@pytest.mark.django_db
@pytest.mark.parametrize("environment", ["production", "test"])
def test_a_development_number_exists_only_in_development(alpha, settings, environment):
    settings.AURA_ENV = environment

    with pytest.raises(NotInDevelopmentError):
        do_connect_development_number(alpha.organization, assistant_id=first_assistant(alpha))

    assert not PhoneNumber.objects.filter(number=development_number_of(alpha.organization)).exists()


@pytest.mark.django_db
def test_another_organizations_development_number_is_not_taken_over(alpha, beta, settings):
    settings.AURA_ENV = "development"
    PhoneNumber.objects.create(
        organization=beta.organization, number=development_number_of(alpha.organization), assistant_id=1
    )

    with pytest.raises(NotInDevelopmentError):
        do_connect_development_number(alpha.organization, assistant_id=first_assistant(alpha))


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_local_call_goes_through_the_real_webhook_and_stream(daphne_server, alpha, settings):
    settings.AURA_ENV = "development"
    number, auth_token = do_connect_development_number(alpha.organization, assistant_id=first_assistant(alpha))
    with tenant_context(alpha.organization):  # offline recognition on a loaded 2-core machine can take seconds
        Assistant.objects.filter(pk=number.assistant_id).update(stt_timeout_ms=20000)

    with pytest.raises(RuntimeError, match="403"):  # the number's own token signs; no other does
        ring(daphne_server.base_url, number, "not-the-token")
    stream_url, parameters, call_sid = ring(daphne_server.base_url, number, auth_token)
    record = asyncio.run(call(stream_url, parameters, call_sid, caller_audio(HOURS), max_s=40))

    assert len(record.heard) > 8000, "the caller heard the assistant"
    deadline = time.monotonic() + 20
    while not Call.objects.filter(call_sid=call_sid, ended_at__isnull=False).exists():
        assert time.monotonic() < deadline, "the call never ended"
        time.sleep(0.2)
    conversation_id = Call.objects.get(call_sid=call_sid).conversation_id
    with tenant_context(alpha.organization):
        said = [turn.text for turn in Turn.objects.filter(conversation_id=conversation_id, role="visitor")]
    assert any("opening" in text or "hours" in text for text in said), said
