"""POST /api/v1/calls places a call through Twilio's REST API (scope calls:write); signed status
callbacks move the call on and fire call.started / call.ended webhooks."""

from __future__ import annotations

import json
import urllib.parse
from decimal import Decimal

import pytest
from django.test import Client

from billing.models import Subscription, UsageEvent
from billing.queries import quota_status
from telephony.models import Call
from tenants.models import Organization
from tests.api.conftest import api_client, error_code
from tests.fakes.twilio import twilio_signature
from tests.telephony.conftest import ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN, ALPHA_NUMBER, BETA_NUMBER
from webhooks.models import WebhookDelivery, WebhookEndpoint

CALLEE = "+14155550123"
STATUS_PATH = "/telephony/twilio/status"


@pytest.fixture
def listening(alpha) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        organization=alpha.organization,
        url="https://hooks.alpha.example/aura",
        events=["call.started", "call.ended"],
        encrypted_secret="x",
        secret_hint="x",
    )


def status_callback(call_sid: str, status: str, *, token: str = ALPHA_AUTH_TOKEN, **extra: str):
    params = {"CallSid": call_sid, "CallStatus": status, "AccountSid": ALPHA_ACCOUNT_SID, **extra}
    return Client().post(
        STATUS_PATH,
        urllib.parse.urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_HOST="localhost",
        HTTP_X_TWILIO_SIGNATURE=twilio_signature(token, f"https://aura.example{STATUS_PATH}", params),
    )


@pytest.mark.django_db
def test_a_call_is_placed_from_the_organizations_number(alpha, alpha_number, make_key, rest):
    client = api_client(make_key(alpha, ["read", "calls:write"]))

    response = client.post(
        "/api/v1/calls/",
        {"from": ALPHA_NUMBER, "to": CALLEE, "first_message": "Hi, this is Alpha.", "metadata": {"order": 7}},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["direction"] == "outbound" and body["status"] == "queued"
    assert (body["from"], body["to"], body["metadata"]) == (ALPHA_NUMBER, CALLEE, {"order": 7})
    (request,) = rest.requests
    assert request.path == f"/2010-04-01/Accounts/{ALPHA_ACCOUNT_SID}/Calls.json"
    assert (request.account_sid, request.auth_token) == (ALPHA_ACCOUNT_SID, ALPHA_AUTH_TOKEN)
    assert request.form["To"] == CALLEE and request.form["From"] == ALPHA_NUMBER
    call = Call.objects.get(call_sid=body["sid"])
    assert request.form["Url"] == f"https://aura.example/telephony/twilio/voice?call={call.pk}"
    assert request.form["StatusCallback"] == f"https://aura.example/telephony/twilio/status?call={call.pk}"
    assert call.first_message == "Hi, this is Alpha." and call.organization_id == alpha.organization.pk
    assert client.get(f"/api/v1/calls/{call.pk}/").json()["sid"] == call.call_sid
    assert [c["sid"] for c in client.get("/api/v1/calls/").json()["results"]] == [call.call_sid]


@pytest.mark.django_db
@pytest.mark.parametrize(("scopes", "status"), [(["read"], 403), (["write"], 403), (["admin"], 201)])
def test_placing_calls_needs_the_calls_write_scope(alpha, alpha_number, make_key, rest, scopes, status):
    response = api_client(make_key(alpha, scopes)).post(
        "/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE}, format="json"
    )
    assert response.status_code == status
    assert len(rest.requests) == (1 if status == 201 else 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"from": "+14155550999", "to": CALLEE},  # not the organization's number
        {"from": ALPHA_NUMBER, "to": "0415 555"},
        {"from": ALPHA_NUMBER},
        {"from": ALPHA_NUMBER, "to": CALLEE, "metadata": {"big": "x" * 5000}},
    ],
)
def test_bad_calls_are_refused_before_twilio_is_asked(alpha, alpha_number, beta, make_key, rest, body):
    response = api_client(make_key(alpha, ["calls:write"])).post("/api/v1/calls/", body, format="json")
    assert response.status_code == 400 and error_code(response) == "validation_error"
    assert not rest.requests and not Call.objects.exists()


@pytest.mark.django_db
def test_another_organizations_number_cannot_place_calls(beta, alpha_number, make_key, rest):
    response = api_client(make_key(beta, ["calls:write"])).post(
        "/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE}, format="json"
    )
    assert response.status_code == 400 and not rest.requests


@pytest.mark.django_db
def test_status_callbacks_move_the_call_on_and_fire_webhooks_once(alpha, alpha_number, make_key, rest, listening):
    sid = (
        api_client(make_key(alpha, ["calls:write"]))
        .post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE, "metadata": {"order": 7}}, format="json")
        .json()["sid"]
    )

    assert status_callback(sid, "ringing").status_code == 204
    assert status_callback(sid, "in-progress").status_code == 204
    assert status_callback(sid, "completed", CallDuration="42").status_code == 204
    assert status_callback(sid, "completed", CallDuration="42").status_code == 204  # Twilio retried

    call = Call.objects.get(call_sid=sid)
    assert (call.status, call.duration_s) == ("completed", 42)
    assert call.answered_at is not None and call.ended_at is not None
    deliveries = list(WebhookDelivery.objects.order_by("created_at"))
    assert [d.event_type for d in deliveries] == ["call.started", "call.ended"]
    (minutes,) = UsageEvent.objects.filter(metric="phone_out_seconds")
    assert (minutes.quantity, minutes.channel, minutes.provider, minutes.model) == (42, "phone", "twilio", "outbound")
    assert minutes.cost == Decimal("0.018")  # the price list's outbound price for one (rounded up) minute
    ended = json.loads(deliveries[1].body)["data"]["call"]
    assert (ended["sid"], ended["duration_s"], ended["metadata"], ended["direction"]) == (
        sid,
        42,
        {"order": 7},
        "outbound",
    )


@pytest.mark.django_db
def test_a_call_that_was_never_answered_ends_without_starting(alpha, alpha_number, make_key, rest, listening):
    sid = (
        api_client(make_key(alpha, ["calls:write"]))
        .post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE}, format="json")
        .json()["sid"]
    )

    status_callback(sid, "no-answer", CallDuration="0")

    assert Call.objects.get(call_sid=sid).status == "no-answer"
    assert [d.event_type for d in WebhookDelivery.objects.all()] == ["call.ended"]
    assert not UsageEvent.objects.filter(channel="phone").exists()  # nothing to bill


@pytest.mark.django_db
def test_unsigned_or_wrongly_signed_status_callbacks_change_nothing(alpha, alpha_number, make_key, rest, listening):
    sid = (
        api_client(make_key(alpha, ["calls:write"]))
        .post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE}, format="json")
        .json()["sid"]
    )

    assert status_callback(sid, "completed", token="guess").status_code == 403
    unsigned = Client().post(STATUS_PATH, {"CallSid": sid, "CallStatus": "completed"}, HTTP_HOST="localhost")
    assert unsigned.status_code == 403
    assert Call.objects.get(call_sid=sid).status == "queued" and not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_the_platforms_account_only_calls_the_allowed_countries(settings, beta, beta_number, make_key, rest):
    """Finding 1: a number on the platform's Twilio account cannot dial premium numbers abroad on its bill."""
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "e" * 32, "platform-token"
    settings.TELEPHONY_PLATFORM_DESTINATION_COUNTRIES = ["US"]
    beta_number.call_countries = "US,CA,JM"  # the tenant may widen its list; the platform's still bounds it
    beta_number.save()
    client = api_client(make_key(beta, ["calls:write"]))

    for to in ("+881612345678", "+14165551234", "+18765551234"):
        abroad = client.post("/api/v1/calls/", {"from": BETA_NUMBER, "to": to}, format="json")
        assert abroad.status_code == 400 and error_code(abroad) == "validation_error", to
    assert not rest.requests and not Call.objects.exists()
    assert client.post("/api/v1/calls/", {"from": BETA_NUMBER, "to": CALLEE}, format="json").status_code == 201


@pytest.mark.django_db
def test_nobody_is_rung_for_an_organization_that_is_not_ready_or_over_its_plan(alpha, alpha_number, make_key, rest):
    """Finding 2: the plan and the organization are checked before Twilio dials."""
    client = api_client(make_key(alpha, ["calls:write"]))

    Subscription.objects.filter(organization=alpha.organization).update(status="cancelled")
    cancelled = client.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE}, format="json")
    assert (cancelled.status_code, error_code(cancelled)) == (402, quota_status(alpha.organization.pk).code)
    Subscription.objects.filter(organization=alpha.organization).update(status="active")

    organization = Organization.objects.get(pk=alpha.organization.pk)
    organization.is_ready = False
    organization.save()
    not_ready = client.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE}, format="json")
    assert not_ready.status_code in (401, 402, 403)

    assert not rest.requests and not Call.objects.exists()


@pytest.mark.django_db
def test_placing_calls_is_rate_limited_per_organization(settings, alpha, alpha_number, make_key, rest):
    settings.AURA_CALLS_PER_ORGANIZATION_PER_MINUTE = 2
    client = api_client(make_key(alpha, ["calls:write"]))

    answers = [client.post("/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE}, format="json") for _ in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 429]
    assert error_code(answers[2]) == "rate_limited" and int(answers[2]["Retry-After"]) >= 1
    assert len(rest.requests) == 2 and Call.objects.count() == 2


@pytest.mark.django_db
def test_twilios_refusal_is_told_without_its_words_and_the_call_is_kept_failed(alpha, alpha_number, make_key, rest):
    """Finding 2: Twilio's error text names the account SID; the API returns a fixed message."""
    rest.refuse_calls = True

    response = api_client(make_key(alpha, ["calls:write"])).post(
        "/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE}, format="json"
    )

    assert (response.status_code, error_code(response)) == (502, "carrier_error")
    assert ALPHA_ACCOUNT_SID not in response.content.decode()
    assert response.json()["error"]["message"] == "Twilio did not accept the call."
    (call,) = Call.objects.all()
    assert call.status == "failed" and call.ended_at is not None and call.to_number == CALLEE


@pytest.mark.django_db(transaction=True)
def test_a_status_callback_that_beats_twilios_answer_finds_the_call(alpha, alpha_number, make_key, rest, listening):
    """Finding 2: the call is stored (committed) before Twilio is asked, and Twilio is asked outside any
    transaction: a status callback arriving before the REST answer finds it by the id in its URL."""
    seen: list[int] = []

    def callback_first(request, call_sid: str) -> None:
        url = request.form["StatusCallback"]
        params = {"CallSid": call_sid, "CallStatus": "initiated", "AccountSid": ALPHA_ACCOUNT_SID}
        seen.append(
            Client()
            .post(
                url.removeprefix("https://aura.example"),
                urllib.parse.urlencode(params),
                content_type="application/x-www-form-urlencoded",
                HTTP_HOST="localhost",
                HTTP_X_TWILIO_SIGNATURE=twilio_signature(ALPHA_AUTH_TOKEN, url, params),
            )
            .status_code
        )
        seen.append(Call.objects.filter(call_sid=call_sid).count())

    rest.before_answer = callback_first

    response = api_client(make_key(alpha, ["calls:write"])).post(
        "/api/v1/calls/", {"from": ALPHA_NUMBER, "to": CALLEE}, format="json"
    )

    assert response.status_code == 201, response.content
    assert seen == [204, 1]  # answered, and the row learnt its SID from the callback
    (call,) = Call.objects.all()
    assert call.call_sid == response.json()["sid"] and call.call_sid.startswith("CA") and call.status == "initiated"
