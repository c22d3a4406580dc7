"""The platform admin's form for opening an organization."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import escape

from tenants.actions import NewOrganization
from tenants.models import SLUG_PATTERN, ApiKey, ApiScope, Organization


class OrganizationCreationForm(forms.ModelForm):
    admin_email = forms.EmailField(label="First admin's e-mail", help_text="They log in with this address.")
    admin_password = forms.CharField(label="First admin's password", widget=forms.PasswordInput, strip=False)

    class Meta:
        model = Organization
        fields = ["name", "slug"]
        # The admin renders help text as HTML: the host pattern is text.
        help_texts = {
            "slug": escape(f"Becomes the host <slug>.<base domain> and the schema name. Pattern: {SLUG_PATTERN}")
        }

    def new_organization(self) -> NewOrganization:
        data = self.cleaned_data
        return NewOrganization(
            name=data.get("name", ""),
            slug=data.get("slug", ""),
            admin_email=data.get("admin_email", ""),
            admin_password=data.get("admin_password", ""),
        )

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        try:
            self.new_organization().validate()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    if field not in self.errors or message not in self.errors[field]:
                        self.add_error(field if field in self.fields else None, message)
        return cleaned

    def validate_unique(self) -> None:
        """Uniqueness is checked by NewOrganization.validate with friendlier messages."""


class ApiKeyCreationForm(forms.ModelForm):
    """A tenant admin issues an API key; its secret is shown once, on the next page."""

    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiScope.READ],
        help_text="admin includes write (changes), write includes read.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "expires_at"]

    def clean_expires_at(self) -> object:
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise ValidationError("Choose a moment in the future.")
        return value


class OrganizationSettingsForm(forms.ModelForm):
    """What a tenant admin sets for the whole organization: hours for the business-hours tool, and privacy."""

    class Meta:
        model = Organization
        fields = ["time_zone", "business_hours", "redact_personal_data", "record_audio", "retention_days"]
        widgets = {"business_hours": forms.Textarea(attrs={"rows": 9, "cols": 70, "style": "font-family: monospace"})}
