"""Phone numbers for the telephony tests: alpha's on its own Twilio account, beta's on the platform's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django_tenants.utils import tenant_context

from telephony.actions import seal_auth_token
from telephony.models import PhoneNumber
from tests.api.conftest import make_key  # noqa: F401 - API keys for the calls API's tests
from tests.fakes.twilio import FakeTwilioRest
from voice.models import Assistant

ALPHA_NUMBER = "+14155550100"
BETA_NUMBER = "+14155550200"
ALPHA_ACCOUNT_SID = "AC" + "a1" * 16
ALPHA_AUTH_TOKEN = "alpha-own-twilio-auth-token-0123"
CALLER = "+15005550006"


def first_assistant(tenant) -> int:
    with tenant_context(tenant.organization):
        return Assistant.objects.order_by("pk").values_list("pk", flat=True).first()


@pytest.fixture
def alpha_number(alpha) -> PhoneNumber:
    number = PhoneNumber(
        organization=alpha.organization,
        number=ALPHA_NUMBER,
        assistant_id=first_assistant(alpha),
        account_sid=ALPHA_ACCOUNT_SID,
    )
    seal_auth_token(number, ALPHA_AUTH_TOKEN)
    number.save()
    return number


@pytest.fixture
def beta_number(beta) -> PhoneNumber:
    return PhoneNumber.objects.create(
        organization=beta.organization, number=BETA_NUMBER, assistant_id=first_assistant(beta)
    )


@pytest.fixture
def rest(settings) -> Iterator[FakeTwilioRest]:
    """Twilio's REST API, faked on a loopback socket, where this process's REST calls go."""
    with FakeTwilioRest() as fake:
        settings.TWILIO_API_BASE_URL = fake.base_url
        settings.AURA_PLATFORM_URL = "https://aura.example"
        yield fake


def ringing_call_token(number: PhoneNumber, call_sid: str) -> str:
    """An inbound call from CALLER that is ringing on ``number``, and the stream token its webhook would give."""
    from telephony.actions import do_start_inbound_call
    from voice import tokens

    do_start_inbound_call(number=number, call_sid=call_sid, caller=CALLER)
    token, _ = tokens.issue_call_token(
        phone_number_id=number.pk,
        organization_id=number.organization_id,
        assistant_id=number.assistant_id,
        call_sid=call_sid,
        caller=CALLER,
    )
    return token
