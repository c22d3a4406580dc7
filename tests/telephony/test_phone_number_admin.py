"""A tenant's admin adds a phone number: the auth token sealed and shown masked, the webhook URL to paste."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import Client, override_settings

from core.crypto import decrypt
from telephony.models import PhoneNumber
from telephony.queries import twilio_account
from tests.conftest import PASSWORD
from tests.telephony.conftest import ALPHA_ACCOUNT_SID, BETA_NUMBER, first_assistant

URL = "/admin/telephony/phonenumber/"
TOKEN = "0123456789abcdef0123456789abcdef"


def admin_of(tenant) -> Client:
    client = Client(HTTP_HOST=tenant.host)
    assert client.post("/admin/login/", {"username": tenant.admin_email, "password": PASSWORD}).status_code == 302
    return client


def staff_client() -> Client:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("staffer", "staffer@aura.example", PASSWORD)
    client = Client(HTTP_HOST="localhost")
    assert client.post("/admin/login/", {"username": "staffer", "password": PASSWORD}).status_code == 302
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
def test_a_number_is_added_with_its_token_sealed_and_the_webhook_url_shown(settings, alpha, rest):
    rest.own("+14155550111", ALPHA_ACCOUNT_SID)
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
    (lookup,) = rest.requests  # the number was looked up in the tenant's own account before it was saved
    assert lookup.form["PhoneNumber"] == "+14155550111"
    assert (lookup.account_sid, lookup.auth_token) == (ALPHA_ACCOUNT_SID, TOKEN)

    kept = client.post(f"{URL}{number.pk}/change/", form(first_assistant(alpha), auth_token=""))
    assert kept.status_code == 302
    assert decrypt(PhoneNumber.objects.get(pk=number.pk).encrypted_auth_token) == TOKEN


@pytest.mark.django_db
def test_bad_numbers_and_half_credentials_are_refused(alpha, rest):
    client = admin_of(alpha)
    assistant = first_assistant(alpha)

    for changes, message in [
        ({"number": "0415 555 0111"}, "E.164"),
        ({"auth_token": ""}, "Enter the auth token"),
        ({"account_sid": ""}, "This field is required"),
        ({"account_sid": "", "auth_token": ""}, "This field is required"),
        ({"account_sid": "AC123"}, "34 characters"),
    ]:
        response = client.post(f"{URL}add/", form(assistant, **changes))
        assert response.status_code == 200 and message in response.content.decode(), changes
    assert not PhoneNumber.objects.exists()


@pytest.mark.django_db
def test_a_tenant_cannot_put_a_number_on_the_platforms_account(settings, alpha, rest):
    """Finding 1: without credentials a number would run (and place calls) on the platform's Twilio account."""
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "e" * 32, "platform-token"
    rest.own("+14155550111", settings.TWILIO_ACCOUNT_SID)

    response = admin_of(alpha).post(f"{URL}add/", form(first_assistant(alpha), account_sid="", auth_token=""))

    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not PhoneNumber.objects.exists() and not rest.requests


@pytest.mark.django_db
def test_a_number_not_in_the_tenants_twilio_account_is_refused_without_telling_who_has_it(
    alpha, beta, beta_number, rest
):
    """Finding 1: a tenant cannot claim a number its Twilio account does not hold, nor learn that another
    organization uses it."""
    rest.own("+14155550111", "AC" + "9" * 32)  # someone else's Twilio account holds it
    client = admin_of(alpha)
    assistant = first_assistant(alpha)

    for number in ("+14155550111", BETA_NUMBER):
        page = client.post(f"{URL}add/", form(assistant, number=number)).content.decode()
        assert "This number is not in that Twilio account" in page, number
        assert "already" not in page, number
    assert list(PhoneNumber.objects.values_list("number", "organization")) == [(BETA_NUMBER, beta.organization.pk)]


@pytest.mark.django_db
def test_changing_the_number_or_account_checks_ownership_again(alpha, rest):
    rest.own("+14155550111", ALPHA_ACCOUNT_SID)
    client = admin_of(alpha)
    client.post(f"{URL}add/", form(first_assistant(alpha)))
    number = PhoneNumber.objects.get()

    moved = client.post(f"{URL}{number.pk}/change/", form(first_assistant(alpha), number="+14155550122", auth_token=""))

    assert "This number is not in that Twilio account" in moved.content.decode()
    assert PhoneNumber.objects.get().number == "+14155550111"


@pytest.mark.django_db
def test_platform_staff_assign_platform_account_numbers_which_tenants_cannot_move(settings, alpha, rest):
    """Finding 1: only staff put a number on the platform's account, and only one that account holds; its
    transfers go only to the allowed countries."""
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "e" * 32, "platform-token"
    settings.TELEPHONY_PLATFORM_DESTINATION_COUNTRIES = ["US", "CA"]
    rest.own("+14155550133", settings.TWILIO_ACCOUNT_SID)
    staff = staff_client()
    assigned = {"organization": alpha.organization.pk, "assistant_id": first_assistant(alpha), "is_active": "on"}

    not_held = staff.post(f"{URL}add/", {**assigned, "number": "+14155550144"})
    assert "This number is not in that Twilio account" in not_held.content.decode()
    abroad = staff.post(f"{URL}add/", {**assigned, "number": "+14155550133", "transfer_to": "+881612345678"})
    assert "cannot go to this country" in abroad.content.decode()
    assert not PhoneNumber.objects.exists()
    added = staff.post(f"{URL}add/", {**assigned, "number": "+14155550133"})
    assert added.status_code == 302, added.content.decode()[-2000:]
    number = PhoneNumber.objects.get()
    assert not number.uses_own_account and twilio_account(number).auth_token == "platform-token"

    # the tenant sets its assistant and transfers, but cannot move the number or its account
    tenant = admin_of(alpha)
    changes = {"number": "+14155550199", "account_sid": ALPHA_ACCOUNT_SID, "auth_token": TOKEN}
    tenant.post(f"{URL}{number.pk}/change/", form(first_assistant(alpha), **changes, transfer_to="+14155550177"))
    number.refresh_from_db()
    assert (number.number, number.account_sid, number.transfer_to) == ("+14155550133", "", "+14155550177")
    abroad = tenant.post(f"{URL}{number.pk}/change/", form(first_assistant(alpha), transfer_to="+881612345678"))
    assert "cannot go to this country" in abroad.content.decode()


@pytest.mark.django_db
def test_another_organizations_numbers_are_not_listed(alpha, beta, beta_number):
    assert "+14155550200" not in admin_of(alpha).get(URL).content.decode()
    assert "+14155550200" in admin_of(beta).get(URL).content.decode()


@pytest.mark.django_db
def test_rotating_encryption_keys_reseals_twilio_tokens(alpha, capsys, rest):
    rest.own("+14155550111", ALPHA_ACCOUNT_SID)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(AURA_ENCRYPTION_KEYS=[old]):
        admin_of(alpha).post(f"{URL}add/", form(first_assistant(alpha)))
    with override_settings(AURA_ENCRYPTION_KEYS=[new, old]):
        call_command("rotate_encryption_keys")
    assert "1 Twilio auth token(s) now sealed" in capsys.readouterr().out
    with override_settings(AURA_ENCRYPTION_KEYS=[new]):
        assert decrypt(PhoneNumber.objects.get().encrypted_auth_token) == TOKEN


@pytest.mark.django_db
def test_the_admin_action_points_the_numbers_webhooks_here_through_twilios_api(settings, alpha, rest):
    rest.own("+14155550111", ALPHA_ACCOUNT_SID)
    rest.numbers["+14155550111"] = "PN" + "7" * 32
    client = admin_of(alpha)
    client.post(f"{URL}add/", form(first_assistant(alpha)))
    number = PhoneNumber.objects.get()
    rest.requests.clear()

    response = client.post(URL, {"action": "point_twilio_here", "_selected_action": [number.pk]}, follow=True)

    assert "Twilio now sends its calls here" in response.content.decode()
    lookup, update = rest.requests
    assert lookup.method == "GET" and lookup.form["PhoneNumber"] == number.number
    assert (lookup.account_sid, lookup.auth_token) == (ALPHA_ACCOUNT_SID, TOKEN)
    assert update.path.endswith(f"/IncomingPhoneNumbers/PN{'7' * 32}.json")
    assert update.form["VoiceUrl"] == "https://aura.example/telephony/twilio/voice"
    assert update.form["VoiceMethod"] == "POST"
    assert update.form["StatusCallback"] == "https://aura.example/telephony/twilio/status"
