"""The tenant admin's form for a webhook endpoint (the same URL guard as the API)."""

from __future__ import annotations

from django import forms

from webhooks.models import EventType, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", widget=forms.URLInput(attrs={"size": 80}), label="URL")
    events = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "is_active"]
