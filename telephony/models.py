"""Phone numbers and calls. Public schema (design notes §1: a called number and a call SID arrive from
outside, and one indexed query must find the organization)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from telephony.destinations import validate_countries
from tenants.models import Organization

E164 = r"^\+[1-9][0-9]{6,14}$"  # ASCII digits only (a bare \d takes any script's digits)
e164_validator = RegexValidator(E164, "Enter the number in E.164 form, such as +14155550123.", code="invalid_e164")
account_sid_validator = RegexValidator(
    r"^AC[0-9a-fA-F]{32}$", "A Twilio account SID starts with AC and has 34 characters.", code="invalid_sid"
)


class PhoneNumber(models.Model):
    """A tenant's Twilio number, answered by one of its assistants.

    The Twilio account is the tenant's own (SID and auth token, the token sealed with core.crypto) or,
    when both are empty, the platform's (``TWILIO_ACCOUNT_SID`` / ``TWILIO_AUTH_TOKEN``).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="phone_numbers")
    number = models.CharField(
        max_length=16, unique=True, validators=[e164_validator], help_text="E.164, e.g. +14155550123."
    )
    assistant_id = models.BigIntegerField(help_text="The assistant (in the organization's schema) that answers.")
    account_sid = models.CharField(
        max_length=34,
        blank=True,
        validators=[account_sid_validator],
        help_text="Your Twilio account SID. Empty: the platform's Twilio account.",
    )
    encrypted_auth_token = models.TextField(blank=True, editable=False)
    auth_token_hint = models.CharField(max_length=16, blank=True, editable=False)
    record_calls = models.BooleanField(default=False, help_text="Ask Twilio to record calls to this number.")
    remember_callers = models.BooleanField(
        default=False,
        help_text="Let the assistant remember returning callers by their caller ID (which callers can fake: "
        "anyone showing a caller's number hears what the assistant remembers of them). Off by default.",
    )
    transfer_to = models.CharField(
        max_length=16,
        blank=True,
        validators=[e164_validator],
        help_text="Where the hand-off tool transfers a caller who asks for a person (E.164). Empty: no transfers.",
    )
    call_countries = models.CharField(
        "call countries",
        max_length=200,
        blank=True,
        validators=[validate_countries],
        help_text="ISO 3166 codes of the countries outbound calls and transfers may reach, comma-separated "
        "(US, CA). Empty: this number's own country. Premium-rate and special numbers are always refused.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "number"]

    def __str__(self) -> str:
        return self.number

    def save(self, *args: object, **kwargs: object) -> None:
        from telephony.cache import forget_cached_number

        if self.pk:  # a changed number must stop answering under its old one at once
            old = PhoneNumber.objects.filter(pk=self.pk).values_list("number", flat=True).first()
            if old:
                forget_cached_number(old)
        super().save(*args, **kwargs)
        forget_cached_number(self.number)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        from telephony.cache import forget_cached_number

        forget_cached_number(self.number)
        return super().delete(*args, **kwargs)

    @property
    def uses_own_account(self) -> bool:
        return bool(self.account_sid and self.encrypted_auth_token)


PENDING_SID_PREFIX = "pending-"  # an outbound call stored before Twilio answered with its SID


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class Call(models.Model):
    """One phone call through Twilio, found by its call SID (webhooks, status callbacks)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="calls")
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.SET_NULL, null=True, related_name="calls")
    call_sid = models.CharField(max_length=64, unique=True)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    from_number = models.CharField(max_length=32, blank=True, help_text="Redacted when the organization redacts.")
    to_number = models.CharField(max_length=32, blank=True, help_text="Redacted when the organization redacts.")
    status = models.CharField(max_length=16, default="in-progress", help_text="Twilio's call status.")
    conversation_id = models.UUIDField(null=True, blank=True)
    first_message = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    streamed_at = models.DateTimeField(null=True, blank=True, help_text="When the media stream took the call.")
    measured_s = models.PositiveIntegerField(
        null=True, blank=True, help_text="How long the media stream ran, as this platform measured it."
    )
    duration_s = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Billed seconds: the measured stream, or Twilio's CallDuration when that is longer.",
    )

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["organization", "-started_at"], name="call_org_started")]

    def __str__(self) -> str:
        return f"{self.direction} call {self.call_sid} ({self.status})"
