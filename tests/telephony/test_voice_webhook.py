"""POST /telephony/twilio/voice: Twilio's signature checked, refusals spoken, a stream token handed out."""

from __future__ import annotations

import json
import time
import urllib.parse
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Subscription
from billing.queries import quota_status
from telephony.models import Call, PhoneNumber
from telephony.views import NOT_IN_SERVICE, UNAVAILABLE
from tenants.models import Organization
from tests.fakes.twilio import said, stream_of, twilio_signature
from tests.telephony.conftest import ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN, ALPHA_NUMBER, BETA_NUMBER, CALLER
from voice import tokens
from webhooks.models import WebhookDelivery, WebhookEndpoint

PLATFORM_TOKEN = "platform-token-in-this-test"
PLATFORM_ACCOUNT_SID = "AC" + "e" * 32
PATH = "/telephony/twilio/voice"


@pytest.fixture(autouse=True)
def _platform_account(settings) -> None:
    settings.TWILIO_ACCOUNT_SID = PLATFORM_ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = PLATFORM_TOKEN
    settings.AURA_PLATFORM_URL = "http://localhost:8000"


def call_params(
    to: str, *, call_sid: str = "CA" + "1" * 32, caller: str = CALLER, account_sid: str | None = None
) -> dict[str, str]:
    account_sid = account_sid or (PLATFORM_ACCOUNT_SID if to == BETA_NUMBER else ALPHA_ACCOUNT_SID)
    return {"AccountSid": account_sid, "CallSid": call_sid, "From": caller, "To": to, "Direction": "inbound"}


def post(params: dict[str, str], *, token: str, url: str | None = None, signature: str | None = None, **headers):
    signed = url or f"http://localhost:8000{PATH}"
    body = urllib.parse.urlencode(params)
    return Client().post(
        PATH,
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_HOST="localhost",
        HTTP_X_TWILIO_SIGNATURE=twilio_signature(token, signed, params) if signature is None else signature,
        **headers,
    )


@pytest.mark.django_db
def test_a_signed_call_to_a_number_gets_a_stream_with_a_single_use_token(alpha, alpha_number):
    response = post(call_params(ALPHA_NUMBER), token=ALPHA_AUTH_TOKEN)

    assert response.status_code == 200 and response["Content-Type"] == "text/xml"
    stream = stream_of(response.content.decode())
    assert stream is not None and stream.url == "ws://localhost:8000/ws/twilio/"
    grant = tokens.redeem_call_token(stream.parameters["token"], call_sid="CA" + "1" * 32)
    assert (grant.organization_id, grant.assistant_id, grant.phone_number_id) == (
        alpha.organization.pk,
        alpha_number.assistant_id,
        alpha_number.pk,
    )
    assert grant.call_sid == "CA" + "1" * 32 and grant.caller == CALLER
    with pytest.raises(tokens.TokenError) as used:
        tokens.redeem_call_token(stream.parameters["token"], call_sid="CA" + "1" * 32)
    assert used.value.close_code == 4003
    call = Call.objects.get(call_sid=grant.call_sid)
    assert (call.organization_id, call.direction, call.from_number, call.to_number) == (
        alpha.organization.pk,
        "inbound",
        CALLER,
        ALPHA_NUMBER,
    )


@pytest.mark.django_db
def test_the_callers_number_is_stored_redacted_when_the_organization_redacts(alpha, alpha_number):
    Organization.objects.filter(pk=alpha.organization.pk).update(redact_personal_data=True)
    PhoneNumber.objects.get(pk=alpha_number.pk).save()  # drop the cached number (it carries its organization)
    WebhookEndpoint.objects.create(
        organization=alpha.organization,
        url="https://hooks.alpha.example/aura",
        events=["call.started"],
        encrypted_secret="x",
        secret_hint="x",
    )

    post(call_params(ALPHA_NUMBER), token=ALPHA_AUTH_TOKEN)

    assert Call.objects.get().from_number == "[phone]"
    (started,) = WebhookDelivery.objects.all()  # the call.started webhook carries no number either
    assert CALLER not in started.body and json.loads(started.body)["data"]["call"]["from"] == "[phone]"


@pytest.mark.django_db
def test_behind_the_tls_proxy_the_signed_https_url_is_the_public_one(settings, alpha, alpha_number):
    settings.AURA_PLATFORM_URL = "https://aura.example"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    through_proxy = post(
        call_params(ALPHA_NUMBER), token=ALPHA_AUTH_TOKEN, url=f"https://aura.example{PATH}"
    )  # Twilio signed the public URL; the request reached us as http://localhost

    assert through_proxy.status_code == 200
    assert stream_of(through_proxy.content.decode()).url == "wss://aura.example/ws/twilio/"
    forwarded = post(
        call_params(ALPHA_NUMBER, call_sid="CA" + "2" * 32),
        token=ALPHA_AUTH_TOKEN,
        url=f"https://localhost{PATH}",
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert forwarded.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong_token", "platform_token_for_own_account", "other_url", "changed_parameter"],
)
def test_a_missing_or_wrong_signature_is_refused_and_nothing_is_stored(alpha, alpha_number, tamper):
    params = call_params(ALPHA_NUMBER)
    if tamper == "missing":
        response = post(params, token=ALPHA_AUTH_TOKEN, signature="")
    elif tamper == "wrong_token":
        response = post(params, token="not-the-token")
    elif tamper == "platform_token_for_own_account":
        response = post(params, token=PLATFORM_TOKEN)
    elif tamper == "other_url":
        response = post(params, token=ALPHA_AUTH_TOKEN, url="http://localhost:8000/elsewhere")
    else:
        signature = twilio_signature(ALPHA_AUTH_TOKEN, f"http://localhost:8000{PATH}", params)
        response = post({**params, "From": "+15550000000"}, token=ALPHA_AUTH_TOKEN, signature=signature)

    assert response.status_code == 403
    assert not Call.objects.exists()


@pytest.mark.django_db
def test_an_unknown_number_hears_a_refusal_when_signed_by_the_platforms_account(alpha):
    refused = post(call_params("+14155550999"), token=PLATFORM_TOKEN)
    forged = post(call_params("+14155550999"), token="guess")

    assert refused.status_code == 200 and stream_of(refused.content.decode()) is None
    assert said(refused.content.decode()) == NOT_IN_SERVICE and b"<Hangup" in refused.content
    assert forged.status_code == 403
    assert not Call.objects.exists()


@pytest.mark.django_db
def test_a_number_on_the_platforms_account_is_checked_with_the_platforms_token(beta, beta_number):
    assert post(call_params(BETA_NUMBER), token=PLATFORM_TOKEN).status_code == 200
    assert post(call_params(BETA_NUMBER, call_sid="CA" + "3" * 32), token=ALPHA_AUTH_TOKEN).status_code == 403


@pytest.mark.django_db
def test_inactive_numbers_organizations_and_plans_are_refused_out_loud(alpha, alpha_number, beta, beta_number):
    PhoneNumber.objects.filter(pk=alpha_number.pk).update(is_active=False)
    PhoneNumber.objects.get(pk=alpha_number.pk).save()  # through save(): the cached number is dropped
    inactive = post(call_params(ALPHA_NUMBER), token=ALPHA_AUTH_TOKEN)
    assert said(inactive.content.decode()) == NOT_IN_SERVICE

    Organization.objects.filter(pk=beta.organization.pk).update(is_ready=False)
    PhoneNumber.objects.get(pk=beta_number.pk).save()
    not_ready = post(call_params(BETA_NUMBER), token=PLATFORM_TOKEN)
    assert said(not_ready.content.decode()) == UNAVAILABLE
    Organization.objects.filter(pk=beta.organization.pk).update(is_ready=True)
    PhoneNumber.objects.get(pk=beta_number.pk).save()

    Subscription.objects.filter(organization=beta.organization).update(status="cancelled")
    over_plan = post(call_params(BETA_NUMBER), token=PLATFORM_TOKEN)
    assert stream_of(over_plan.content.decode()) is None
    assert said(over_plan.content.decode()) == quota_status(beta.organization.pk).message  # billing's own words
    assert not Call.objects.exists()


@pytest.mark.django_db
def test_only_post_is_answered(alpha):
    assert Client().get(PATH, HTTP_HOST="localhost").status_code == 405


@pytest.mark.django_db
def test_call_tokens_expire_and_cannot_be_forged(alpha, alpha_number):
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 120):
        old, _ = tokens.issue_call_token(
            phone_number_id=alpha_number.pk,
            organization_id=alpha.organization.pk,
            assistant_id=1,
            call_sid="CA1",
            caller=CALLER,
        )
    with pytest.raises(tokens.TokenError) as expired:
        tokens.redeem_call_token(old, call_sid="CA1")
    assert expired.value.close_code == 4002
    fresh, _ = tokens.issue_call_token(
        phone_number_id=alpha_number.pk,
        organization_id=alpha.organization.pk,
        assistant_id=1,
        call_sid="CA1",
        caller="",
    )
    with pytest.raises(tokens.TokenError) as forged:
        tokens.redeem_call_token(fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB"), call_sid="CA1")
    assert forged.value.close_code == 4001
    widget_token, _ = tokens.issue_token(alpha.widget_key, origin=alpha.origin)
    with pytest.raises(tokens.TokenError):  # another salt: a widget token opens no phone stream
        tokens.redeem_call_token(widget_token, call_sid="CA1")


@pytest.mark.django_db
def test_a_webhook_from_another_twilio_account_than_the_numbers_is_refused(alpha, alpha_number, beta, beta_number):
    """Finding 1: the request's AccountSid must be the account the number is in (the tenant's or the platform's)."""
    other = "AC" + "c" * 32

    assert post(call_params(ALPHA_NUMBER, account_sid=other), token=ALPHA_AUTH_TOKEN).status_code == 403
    assert post(call_params(BETA_NUMBER, account_sid=ALPHA_ACCOUNT_SID), token=PLATFORM_TOKEN).status_code == 403
    assert not Call.objects.exists()
    assert post(call_params(ALPHA_NUMBER), token=ALPHA_AUTH_TOKEN).status_code == 200


@pytest.mark.django_db
def test_an_organization_turning_redaction_on_applies_to_its_next_call_at_once(alpha, alpha_number):
    """Finding 3: the cached number carried its organization as it was; the organization's save (not the
    number's) must drop it, or callers' numbers are stored unredacted for minutes."""
    organization = Organization.objects.get(pk=alpha.organization.pk)
    organization.redact_personal_data = False
    organization.save()
    assert post(call_params(ALPHA_NUMBER, call_sid="CA" + "4" * 32), token=ALPHA_AUTH_TOKEN).status_code == 200
    assert Call.objects.get(call_sid="CA" + "4" * 32).from_number == CALLER  # and the number is cached now

    organization.redact_personal_data = True
    organization.save()  # the number itself is not saved again
    assert post(call_params(ALPHA_NUMBER, call_sid="CA" + "5" * 32), token=ALPHA_AUTH_TOKEN).status_code == 200

    assert CALLER not in Call.objects.get(call_sid="CA" + "5" * 32).from_number


@pytest.mark.django_db
def test_a_replayed_webhook_mints_no_token_for_another_organizations_or_a_handled_call(
    alpha, alpha_number, beta, beta_number
):
    """Finding 4: a call SID belongs to the organization and number it first came for; once its stream has a
    conversation, or it ended, no webhook gets a stream token for it again."""
    sid = "CA" + "6" * 32
    assert stream_of(post(call_params(ALPHA_NUMBER, call_sid=sid), token=ALPHA_AUTH_TOKEN).content.decode())
    retried = post(call_params(ALPHA_NUMBER, call_sid=sid), token=ALPHA_AUTH_TOKEN)  # Twilio retried: still fine
    assert retried.status_code == 200 and stream_of(retried.content.decode()) is not None

    elsewhere = post(call_params(BETA_NUMBER, call_sid=sid), token=PLATFORM_TOKEN)
    assert elsewhere.status_code == 409 and "token" not in elsewhere.content.decode()

    Call.objects.filter(call_sid=sid).update(conversation_id="5f0c6c1e-7a1f-4a57-9a43-8f1d2b3c4d5e")
    assert post(call_params(ALPHA_NUMBER, call_sid=sid), token=ALPHA_AUTH_TOKEN).status_code == 409
    Call.objects.filter(call_sid=sid).update(conversation_id=None, status="completed", ended_at=timezone.now())
    assert post(call_params(ALPHA_NUMBER, call_sid=sid), token=ALPHA_AUTH_TOKEN).status_code == 409
    assert list(Call.objects.values_list("call_sid", "organization")) == [(sid, alpha.organization.pk)]
