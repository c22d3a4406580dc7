"""Webhook endpoints and deliveries over the API."""

from __future__ import annotations

import json

from rest_framework import serializers

from webhooks.models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), min_length=1, max_length=10
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("id", "url", "description", "events", "is_active", "secret_hint", "created_at", "updated_at")
        read_only_fields = ("id", "secret_hint", "created_at", "updated_at")


class NewWebhookEndpointSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret (whsec_…).")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = (*WebhookEndpointSerializer.Meta.fields, "secret")


class SigningSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True, help_text="whsec_…: the HMAC-SHA256 key of AURA-Signature.")


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ("number", "started_at", "duration_ms", "status_code", "succeeded", "error", "response_body")
        read_only_fields = fields


DELIVERY_FIELDS = (
    "id",
    "endpoint_id",
    "event_id",
    "event_type",
    "status",
    "attempt_count",
    "next_attempt_at",
    "last_status_code",
    "replay_of_id",
    "created_at",
    "completed_at",
)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    endpoint_id = serializers.IntegerField(read_only=True)
    replay_of_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = WebhookDelivery
        fields = DELIVERY_FIELDS
        read_only_fields = DELIVERY_FIELDS


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    payload = serializers.SerializerMethodField(help_text="The JSON body that was (or will be) sent.")
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = (*DELIVERY_FIELDS, "payload", "attempts")
        read_only_fields = fields

    def get_payload(self, delivery: WebhookDelivery) -> dict[str, object]:
        return json.loads(delivery.body)


class DeliveryFilterSerializer(serializers.Serializer):
    endpoint_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    event_type = serializers.CharField(required=False, max_length=40)
