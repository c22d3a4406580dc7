"""Twilio's REST API, through the ``twilio`` package: moving a live call on (a transfer), placing calls.

The client is synchronous (``requests``): callers on the event loop run these in a worker thread.
Requests go to ``TWILIO_API_BASE_URL`` (Twilio's by default; tests point it at a local fake).
"""

from __future__ import annotations

from django.conf import settings
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from telephony.queries import TwilioAccount

REST_TIMEOUT_S = 10.0


def rest_client(account: TwilioAccount) -> Client:
    client = Client(account.account_sid, str(account.auth_token), http_client=TwilioHttpClient(timeout=REST_TIMEOUT_S))
    client.api.base_url = settings.TWILIO_API_BASE_URL
    return client


def dial_twiml(number: str) -> str:
    response = VoiceResponse()
    response.dial(number)
    return str(response)


def transfer_call(account: TwilioAccount, *, call_sid: str, to: str) -> None:
    """Leave the media stream and ``<Dial>`` ``to``: Twilio ends the stream and connects the caller there."""
    rest_client(account).calls(call_sid).update(twiml=dial_twiml(to))


def place_call(account: TwilioAccount, *, from_: str, to: str, url: str, status_callback: str) -> str:
    """A new outbound call; returns its SID. Twilio fetches ``url`` for TwiML once it is answered."""
    call = rest_client(account).calls.create(
        to=to,
        from_=from_,
        url=url,
        status_callback=status_callback,
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    return str(call.sid)


def start_recording(account: TwilioAccount, *, call_sid: str) -> None:
    """Ask Twilio to record the call (both sides); the recording stays in the tenant's Twilio account."""
    rest_client(account).calls(call_sid).recordings.create()


def _incoming_number_sid(client: Client, number: str) -> str | None:
    """The ``PN…`` SID of ``number`` in the client's account (``IncomingPhoneNumbers``), or None."""
    found = client.incoming_phone_numbers.list(phone_number=number, limit=1)
    return str(found[0].sid) if found and found[0].phone_number == number else None


def number_in_account(account: TwilioAccount, number: str) -> bool:
    """Whether the Twilio account holds ``number`` (proof that whoever gave these credentials owns it).
    Raises TwilioException when Twilio refuses the credentials."""
    return _incoming_number_sid(rest_client(account), number) is not None


def point_number_here(account: TwilioAccount, *, number: str, voice_url: str, status_callback: str) -> bool:
    """Set the number's *A call comes in* and *Call status changes* webhooks in Twilio. False when the
    account has no such number."""
    client = rest_client(account)
    sid = _incoming_number_sid(client, number)
    if sid is None:
        return False
    client.incoming_phone_numbers(sid).update(
        voice_url=voice_url, voice_method="POST", status_callback=status_callback, status_callback_method="POST"
    )
    return True
