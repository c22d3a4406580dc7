"""Webhook endpoints, deliveries and their attempts. Public schema (design notes §1: a webhook secret is
a key that leaves the platform; deliveries are sent by workers that need no tenant schema)."""

from __future__ import annotations

import uuid

from django.db import models

from tenants.models import Organization


class EventType(models.TextChoices):
    CONVERSATION_STARTED = "conversation.started", "A conversation started"
    CONVERSATION_ENDED = "conversation.ended", "A conversation ended (with a transcript summary)"
    LEAD_CAPTURED = "lead.captured", "A lead was captured"
    HANDOFF_REQUESTED = "handoff.requested", "A visitor asked for a person"
    USAGE_THRESHOLD_REACHED = "usage.threshold_reached", "Usage crossed a share of the plan"
    CALL_STARTED = "call.started", "A phone call was answered"
    CALL_ENDED = "call.ended", "A phone call ended (with its duration)"


PING = "ping"  # sent by "test", to one endpoint, whatever it subscribed to


def validate_events(value: object) -> None:
    from django.core.exceptions import ValidationError

    if not isinstance(value, list) or not value or any(event not in EventType.values for event in value):
        raise ValidationError(f"Choose one or more of: {', '.join(EventType.values)}.", code="invalid_events")


class WebhookEndpoint(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500, help_text="An https:// address on the public internet.")
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, validators=[validate_events])
    is_active = models.BooleanField(default=True)
    encrypted_secret = models.TextField(editable=False)
    secret_hint = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "-created_at"]

    def __str__(self) -> str:
        return self.url

    def save(self, *args: object, **kwargs: object) -> None:
        super().save(*args, **kwargs)
        from webhooks.cache import forget_subscriptions

        forget_subscriptions(self.organization_id)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        from webhooks.cache import forget_subscriptions

        forget_subscriptions(self.organization_id)
        return super().delete(*args, **kwargs)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (will be attempted)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (no more attempts)"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the exact body sent, and where its attempts stand."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=40, help_text="evt_…: the same for every delivery (and replay) of an event.")
    event_type = models.CharField(max_length=40)
    body = models.TextField(help_text="The JSON body sent, byte for byte (it is what the signature covers).")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="webhook_delivery_org"),
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True, help_text="Why it failed without a response, if it did.")
    response_body = models.TextField(blank=True, help_text="The first 2 KB of the response.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_once")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"
