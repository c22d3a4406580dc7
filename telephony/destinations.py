"""Where a call may go (an outbound call, a transfer): by country, never to premium-rate or special ranges.

A number's destinations are the ISO 3166 countries in its ``call_countries`` (empty: the number's own
country), and for a number on the platform's Twilio account only those also in
TELEPHONY_PLATFORM_DESTINATION_COUNTRIES. The country and the kind of a number come from Google's
libphonenumber metadata (``phonenumbers``), so ``+1`` is told apart: the US and Canada from Jamaica, the
Dominican Republic and the other Caribbean members of the North American Numbering Plan. Premium-rate,
shared-cost, personal, UAN, voicemail and pager numbers, and numbers that are not valid, are refused wherever
they are; so are NANP ``976`` exchanges, premium information lines that libphonenumber lists as ordinary.
"""

from __future__ import annotations

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from phonenumbers import PhoneNumberType

REFUSED_TYPES = frozenset(
    {
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
        PhoneNumberType.PAGER,
        PhoneNumberType.UNKNOWN,
    }
)
NANP_PREMIUM_EXCHANGES = frozenset({"976"})  # NXX-976-XXXX: pay-per-call lines in many US/CA area codes


def country_of(number: str) -> str:
    """The ISO 3166 code of an E.164 number's country, or "" when it has none."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.region_code_for_number(parsed) or ""


def parse_countries(text: str) -> list[str]:
    """``"us, ca"`` → ``["US", "CA"]``; raises ValidationError for a code libphonenumber does not know."""
    codes = [code.strip().upper() for code in text.split(",") if code.strip()]
    unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValidationError(
            "Not ISO 3166 country codes: %(codes)s.", code="invalid_country", params={"codes": ", ".join(unknown)}
        )
    return codes


def validate_countries(text: str) -> None:
    parse_countries(text)


def allowed_countries(own_number: str, call_countries: str, *, platform_account: bool) -> frozenset[str]:
    listed = parse_countries(call_countries) if call_countries.strip() else [country_of(own_number)]
    allowed = frozenset(code for code in listed if code)
    if platform_account:
        allowed &= frozenset(code.strip().upper() for code in settings.TELEPHONY_PLATFORM_DESTINATION_COUNTRIES)
    return allowed


def destination_refusal(to: str, allowed: frozenset[str]) -> str:
    """Why a call may not go to ``to`` (E.164), or "" when it may."""
    try:
        parsed = phonenumbers.parse(to, None)
    except phonenumbers.NumberParseException:
        return "This is not a phone number."
    if not phonenumbers.is_valid_number(parsed):
        return "This is not a valid phone number."
    if phonenumbers.number_type(parsed) in REFUSED_TYPES:
        return "Calls to premium-rate and special numbers are not allowed."
    national = phonenumbers.national_significant_number(parsed)
    if parsed.country_code == 1 and national[3:6] in NANP_PREMIUM_EXCHANGES:
        return "Calls to premium-rate and special numbers are not allowed."
    if phonenumbers.region_code_for_number(parsed) not in allowed:
        return "Calls from this number cannot go to this country."
    return ""
