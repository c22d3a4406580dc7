"""Review attacks on the phone doors as a tenant's integrator (or a hostile key holder) would send them."""

from __future__ import annotations

import urllib.parse

import pytest
from django.test import Client

from telephony.models import Call
from tests.telephony.conftest import ALPHA_NUMBER
from tests.telephony.test_calls_api import status_callback
from tests.telephony.test_toll_fraud import US_CALLEE, caller_api, free_slots  # noqa: F401 - fixtures


@pytest.mark.django_db
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_number_in_call_metadata_is_a_400_and_no_call(caller_api, rest, free_slots, literal):  # noqa: F811
    # Python's json reads NaN/Infinity (and 1e999 as inf); PostgreSQL's json refuses them: a 500 after the call.
    raw = f'{{"from": "{ALPHA_NUMBER}", "to": "{US_CALLEE}", "metadata": {{"x": {literal}}}}}'

    response = caller_api.post("/api/v1/calls/", raw, content_type="application/json")

    assert response.status_code == 400, response.content[:300]
    assert not Call.objects.exists() and not rest.requests


@pytest.mark.django_db
@pytest.mark.parametrize("duration", ["²", "٤٢", "4²", "-1", "1e3", " 42"])
def test_a_signed_status_callback_with_a_strange_duration_is_not_a_500(caller_api, rest, free_slots, duration):  # noqa: F811
    # A tenant on its own Twilio account signs its own callbacks: str.isdigit() is True for "²" and "٤٢",
    # which int() then refuses.
    sid = caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": US_CALLEE}, format="json").json()["sid"]

    response = status_callback(sid, "completed", CallDuration=duration)

    assert response.status_code == 204
    assert Call.objects.get(call_sid=sid).status == "completed"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/telephony/twilio/status", "/telephony/twilio/voice"])
@pytest.mark.parametrize("call_id", ["%C2%B2", "1%C2%B2", "%D9%A4"])
def test_a_non_ascii_digit_call_id_is_no_500_before_the_signature_check(alpha, alpha_number, path, call_id):
    # Anyone can post to Twilio's webhooks; "²".isdigit() is True and int("²") raises.
    response = Client().post(
        f"{path}?call={call_id}",
        urllib.parse.urlencode({"CallSid": "CA" + "7" * 32, "Direction": "outbound-api", "To": ALPHA_NUMBER}),
        content_type="application/x-www-form-urlencoded",
        HTTP_HOST="localhost",
        HTTP_X_TWILIO_SIGNATURE="forged",
    )

    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("to", ["+1٤١٥٥٥٥٠١٢٣", "+１４１５５５５０１２３", "+1४१५५५५०१२३"])
def test_digits_of_other_scripts_are_no_number_to_dial(caller_api, rest, free_slots, to):  # noqa: F811
    # E.164's \d matched them and the destination check read them as ASCII digits, but Twilio was handed
    # the string as typed: what is dialled must be what was checked.
    response = caller_api.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": to}, format="json")

    assert response.status_code == 400, response.content[:200]
    assert not rest.requests and not Call.objects.exists()


def test_a_number_in_another_scripts_digits_is_refused_by_the_model_too():
    """Numbers and transfer targets typed in the admins go through the model's validator: ASCII digits only,
    so what is checked is what Twilio dials."""
    from django.core.exceptions import ValidationError

    from telephony.models import e164_validator

    e164_validator("+14155550123")
    with pytest.raises(ValidationError):
        e164_validator("+1٤١٥٥٥٥٠١٢٣")
