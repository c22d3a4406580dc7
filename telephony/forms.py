"""The tenant admin's phone number form: the number lives in the public schema, its assistant here."""

from __future__ import annotations

from django import forms
from django.utils.html import format_html

from telephony.actions import seal_auth_token
from telephony.models import PhoneNumber
from voice.models import Assistant


class PhoneNumberForm(forms.ModelForm):
    assistant = forms.ModelChoiceField(queryset=Assistant.objects.none(), help_text="The assistant that answers.")
    auth_token = forms.CharField(
        label="Twilio auth token",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and shown masked from now on. Empty with an empty SID: the platform's account.",
    )

    class Meta:
        model = PhoneNumber
        fields = ["number", "account_sid", "record_calls", "transfer_to", "is_active"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assistant"].queryset = Assistant.objects.all()
        if self.instance.pk:
            self.fields["assistant"].initial = self.instance.assistant_id
            if self.instance.auth_token_hint:
                self.fields["auth_token"].help_text = format_html(
                    "Current token: {}. Leave empty to keep it.", self.instance.auth_token_hint
                )

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        sid, token = cleaned.get("account_sid", ""), (cleaned.get("auth_token") or "").strip()
        has_token = bool(token or (self.instance.encrypted_auth_token and "account_sid" not in self.changed_data))
        if sid and not has_token:
            self.add_error("auth_token", "Enter the auth token of this account.")
        if token and not sid:
            self.add_error("account_sid", "Enter the account SID this token belongs to.")
        return cleaned

    def save(self, commit: bool = True) -> PhoneNumber:
        number = super().save(commit=False)
        number.assistant_id = self.cleaned_data["assistant"].pk
        if token := (self.cleaned_data.get("auth_token") or "").strip():
            seal_auth_token(number, token)
        if not number.account_sid:  # back to the platform's account: keep no stale secret
            number.encrypted_auth_token, number.auth_token_hint = "", ""
        if commit:
            number.save()
        return number
