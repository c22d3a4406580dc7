"""A tenant's admin adds a phone number: the auth token sealed and shown masked, the webhook URL to paste."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import Client, override_settings

from aura.crypto import decrypt
from telephony.models import PhoneNumber
from telephony.queries import twilio_account
from tests.conftest import PASSWORD
from tests.telephony.conftest import ALPHA_ACCOUNT_SID, first_assistant

URL = "/admin/telephony/phonenumber/"
TOKEN = "0123456789abcdef0123456789abcdef"


def admin_of(tenant) -> Client:
    client = Client(HTTP_HOST=tenant.host)
    assert client.post("/admin/login/", {"username": tenant.admin_email, "password": PASSWORD}).status_code == 302
    return client


def form(assistant_id: int, **changes: object) -> dict[str, object]:
    data = {
        "number": "+14155550111",
        "assistant": assistant_id,
        "account_sid": ALPHA_ACCOUNT_SID,
        "auth_token": TOKEN,
        "transfer_to": "",
        "is_active": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.django_db
def test_a_number_is_added_with_its_token_sealed_and_the_webhook_url_shown(settings, alpha):
    settings.AURA_PLATFORM_URL = "https://aura.example"
    client = admin_of(alpha)

    response = client.post(f"{URL}add/", form(first_assistant(alpha)))

    assert response.status_code == 302, response.content.decode()[-3000:]
    number = PhoneNumber.objects.get(number="+14155550111")
    assert number.organization_id == alpha.organization.pk and not number.record_calls  # off by default
    assert TOKEN not in number.encrypted_auth_token and decrypt(number.encrypted_auth_token) == TOKEN
    assert twilio_account(number).auth_token == TOKEN
    page = client.get(f"{URL}{number.pk}/change/").content.decode()
    assert "https://aura.example/telephony/twilio/voice" in page
    assert TOKEN not in page and number.auth_token_hint in page

    kept = client.post(f"{URL}{number.pk}/change/", form(first_assistant(alpha), auth_token=""))
    assert kept.status_code == 302
    assert decrypt(PhoneNumber.objects.get(pk=number.pk).encrypted_auth_token) == TOKEN


@pytest.mark.django_db
def test_bad_numbers_and_half_credentials_are_refused(alpha):
    client = admin_of(alpha)
    assistant = first_assistant(alpha)

    for changes, message in [
        ({"number": "0415 555 0111"}, "E.164"),
        ({"auth_token": ""}, "Enter the auth token"),
        ({"account_sid": ""}, "Enter the account SID"),
        ({"account_sid": "AC123"}, "34 characters"),
    ]:
        response = client.post(f"{URL}add/", form(assistant, **changes))
        assert response.status_code == 200 and message in response.content.decode(), changes
    assert not PhoneNumber.objects.exists()


@pytest.mark.django_db
def test_a_number_without_credentials_uses_the_platforms_account(settings, alpha):
    settings.TWILIO_AUTH_TOKEN = "platform-token"
    client = admin_of(alpha)

    client.post(f"{URL}add/", form(first_assistant(alpha), account_sid="", auth_token=""))

    number = PhoneNumber.objects.get()
    assert not number.uses_own_account and twilio_account(number).auth_token == "platform-token"


@pytest.mark.django_db
def test_another_organizations_numbers_are_not_listed(alpha, beta, beta_number):
    assert "+14155550200" not in admin_of(alpha).get(URL).content.decode()
    assert "+14155550200" in admin_of(beta).get(URL).content.decode()


@pytest.mark.django_db
def test_rotating_encryption_keys_reseals_twilio_tokens(alpha, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(AURA_ENCRYPTION_KEYS=[old]):
        admin_of(alpha).post(f"{URL}add/", form(first_assistant(alpha)))
    with override_settings(AURA_ENCRYPTION_KEYS=[new, old]):
        call_command("rotate_encryption_keys")
    assert "1 Twilio auth token(s) now sealed" in capsys.readouterr().out
    with override_settings(AURA_ENCRYPTION_KEYS=[new]):
        assert decrypt(PhoneNumber.objects.get().encrypted_auth_token) == TOKEN


@pytest.mark.django_db
def test_the_admin_action_points_the_numbers_webhooks_here_through_twilios_api(settings, alpha):
    from tests.fakes.twilio import FakeTwilioRest

    settings.AURA_PLATFORM_URL = "https://aura.example"
    client = admin_of(alpha)
    client.post(f"{URL}add/", form(first_assistant(alpha)))
    number = PhoneNumber.objects.get()
    with FakeTwilioRest() as rest:
        settings.TWILIO_API_BASE_URL = rest.base_url
        rest.numbers[number.number] = "PN" + "7" * 32

        response = client.post(URL, {"action": "point_twilio_here", "_selected_action": [number.pk]}, follow=True)

    assert "Twilio now sends its calls here" in response.content.decode()
    lookup, update = rest.requests
    assert lookup.method == "GET" and lookup.form["PhoneNumber"] == number.number
    assert (lookup.account_sid, lookup.auth_token) == (ALPHA_ACCOUNT_SID, TOKEN)
    assert update.path.endswith(f"/IncomingPhoneNumbers/PN{'7' * 32}.json")
    assert update.form["VoiceUrl"] == "https://aura.example/telephony/twilio/voice"
    assert update.form["VoiceMethod"] == "POST"
    assert update.form["StatusCallback"] == "https://aura.example/telephony/twilio/status"
