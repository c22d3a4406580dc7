"""The phone number forms: the tenant admin's (own Twilio account, ownership checked with Twilio) and the
platform staff's (numbers of the platform's Twilio account). The number lives in the public schema, its
assistant in the tenant's."""

from __future__ import annotations

from django import forms
from django.utils.html import format_html
from twilio.base.exceptions import TwilioException

from core.crypto import Secret, decrypt
from telephony.actions import seal_auth_token
from telephony.destinations import allowed_countries, destination_refusal, parse_countries
from telephony.models import PhoneNumber
from telephony.queries import TwilioAccount, platform_account
from telephony.twilio_api import number_in_account
from voice.models import Assistant

NOT_IN_ACCOUNT = "This number is not in that Twilio account: add a number your account holds."
TWILIO_REFUSED = "Twilio refused these credentials, or could not be reached; check the account SID and auth token."
TAKEN = "This number is already connected to AURA. If it is yours, contact support."


def _check_ownership(form: forms.ModelForm, account: TwilioAccount, number: str) -> None:
    """Twilio must list ``number`` in ``account``; otherwise the form gets an error on ``number`` (which also
    skips the uniqueness check, so the form does not tell who else uses a number)."""
    try:
        owned = number_in_account(account, number)
    except TwilioException:
        form.add_error("account_sid" if "account_sid" in form.fields else "number", TWILIO_REFUSED)
        return
    if not owned:
        form.add_error("number", NOT_IN_ACCOUNT)


def _check_transfer(
    form: forms.ModelForm, instance: PhoneNumber, cleaned: dict[str, object], *, platform_account: bool
) -> None:
    """The transfer number must be a destination the number may call (its countries, no premium ranges)."""
    transfer_to = str(cleaned.get("transfer_to") or "")
    number = str(cleaned.get("number") or instance.number)
    if not (transfer_to and number) or {"transfer_to", "call_countries", "number"} & set(form.errors):
        return
    countries = str(cleaned.get("call_countries", instance.call_countries) or "")
    if refusal := destination_refusal(
        transfer_to, allowed_countries(number, countries, platform_account=platform_account)
    ):
        form.add_error("transfer_to", refusal)


class PhoneNumberForm(forms.ModelForm):
    """The tenant admin's form. A new number needs the tenant's own Twilio credentials, and Twilio must
    list the number in that account. A number of the platform's account (assigned by platform staff)
    keeps its number and account: the tenant sets its assistant, recording and transfers."""

    assistant = forms.ModelChoiceField(queryset=Assistant.objects.none(), help_text="The assistant that answers.")
    auth_token = forms.CharField(
        label="Twilio auth token",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and shown masked from now on.",
    )

    class Meta:
        model = PhoneNumber
        fields = [
            "number",
            "account_sid",
            "record_calls",
            "remember_callers",
            "transfer_to",
            "call_countries",
            "is_active",
        ]
        error_messages = {"number": {"unique": TAKEN}}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assistant"].queryset = Assistant.objects.all()
        if self.on_platform_account:
            for name in ("number", "account_sid", "auth_token"):
                self.fields[name].disabled = True
            self.fields["account_sid"].help_text = "The platform's Twilio account (assigned by the platform)."
        else:
            self.fields["account_sid"].required = True
            self.fields["account_sid"].help_text = "Your Twilio account SID (the account that holds the number)."
        if self.instance.pk:
            self.fields["assistant"].initial = self.instance.assistant_id
            if self.instance.auth_token_hint:
                self.fields["auth_token"].help_text = format_html(
                    "Current token: {}. Leave empty to keep it.", self.instance.auth_token_hint
                )

    @property
    def on_platform_account(self) -> bool:
        """A number platform staff put on the platform's Twilio account: only staff change its number."""
        return bool(self.instance.pk and not self.instance.account_sid)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        if self.on_platform_account:
            self._check_transfer(cleaned)
            return cleaned
        sid, token = cleaned.get("account_sid", ""), (cleaned.get("auth_token") or "").strip()
        kept_token = self.instance.encrypted_auth_token and "account_sid" not in self.changed_data
        if sid and not (token or kept_token):
            self.add_error("auth_token", "Enter the auth token of this account.")
        number = cleaned.get("number")
        credentials_changed = token or {"number", "account_sid"} & set(self.changed_data)
        if sid and number and (token or kept_token) and credentials_changed and not self.errors:
            secret = Secret(token) if token else Secret(decrypt(self.instance.encrypted_auth_token))
            _check_ownership(self, TwilioAccount(str(sid), secret), str(number))
        self._check_transfer(cleaned)
        return cleaned

    def _check_transfer(self, cleaned: dict[str, object]) -> None:
        _check_transfer(self, self.instance, cleaned, platform_account=self.on_platform_account)

    def clean_call_countries(self) -> str:
        return ", ".join(parse_countries(self.cleaned_data.get("call_countries") or ""))

    def validate_unique(self) -> None:
        """ "Already connected" is said only to an account Twilio confirmed holds the number: a form that has
        an error already (made-up credentials, a number not in the account) says nothing about who else has
        connected it, so its answer is the same for a free number and a taken one."""
        if not self.errors:
            super().validate_unique()

    def save(self, commit: bool = True) -> PhoneNumber:
        number = super().save(commit=False)
        number.assistant_id = self.cleaned_data["assistant"].pk
        if not self.on_platform_account and (token := (self.cleaned_data.get("auth_token") or "").strip()):
            seal_auth_token(number, token)
        if commit:
            number.save()
        return number


class PlatformPhoneNumberForm(forms.ModelForm):
    """Platform staff assign a number of the platform's Twilio account to an organization; Twilio must list
    it in that account. Its calls and transfers may only go to TELEPHONY_PLATFORM_DESTINATION_COUNTRIES."""

    class Meta:
        model = PhoneNumber
        fields = [
            "organization",
            "number",
            "assistant_id",
            "record_calls",
            "remember_callers",
            "transfer_to",
            "call_countries",
            "is_active",
        ]

    def clean_call_countries(self) -> str:
        return ", ".join(parse_countries(self.cleaned_data.get("call_countries") or ""))

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        if self.instance.pk and self.instance.account_sid:
            raise forms.ValidationError("This number is on the organization's own Twilio account: its admin edits it.")
        account = platform_account()
        number = cleaned.get("number")
        if not account.configured:
            raise forms.ValidationError("The platform has no Twilio account (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN).")
        if number and "number" in self.changed_data and not self.errors:
            _check_ownership(self, account, str(number))
        _check_transfer(self, self.instance, cleaned, platform_account=True)
        return cleaned
