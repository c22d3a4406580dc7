"""Issue 21, item 5: Twilio's webhooks refuse NUL characters in their form fields (400) and bodies over the
size limit (413) before the signature is checked, never a 500."""

from __future__ import annotations

import urllib.parse

import pytest
from django.test import Client

from tests.fakes.twilio import twilio_signature
from tests.telephony.conftest import ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN, ALPHA_NUMBER, CALLER


def twilio_post(path: str, params: dict[str, str], *, sign: bool = True):
    url = f"https://aura.example{path}"
    signature = twilio_signature(ALPHA_AUTH_TOKEN, url, params) if sign else "forged"
    return Client().post(
        path,
        urllib.parse.urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_HOST="localhost",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["To", "CallSid", "From", "AccountSid"])
@pytest.mark.parametrize("path", ["/telephony/twilio/voice", "/telephony/twilio/status"])
def test_nul_in_twilios_form_fields_is_a_400_before_the_signature_check(settings, alpha, alpha_number, path, field):
    settings.AURA_PLATFORM_URL = "https://aura.example"
    params = {"To": ALPHA_NUMBER, "From": CALLER, "CallSid": "CA" + "1" * 32, "AccountSid": ALPHA_ACCOUNT_SID}
    params["CallStatus"] = "completed"
    params[field] = params[field][:5] + "\x00" + params[field][5:]

    for signed in (False, True):
        response = twilio_post(path, params, sign=signed)
        assert response.status_code == 400, (signed, response.status_code, response.content[:200])


@pytest.mark.django_db
def test_a_twilio_form_over_the_size_limit_is_a_413(settings, alpha):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = twilio_post("/telephony/twilio/voice", {"To": ALPHA_NUMBER, "Junk": "x" * 20_000}, sign=False)
    assert response.status_code == 413
