"""Phone calls over the API."""

from __future__ import annotations

import json

from rest_framework import serializers

from telephony.models import E164, Call

MAX_METADATA_CHARS = 4000


class CallSerializer(serializers.ModelSerializer):
    sid = serializers.CharField(source="call_sid", read_only=True)
    to = serializers.CharField(source="to_number", read_only=True)
    from_ = serializers.CharField(source="from_number", read_only=True)

    class Meta:
        model = Call
        fields = (
            "id",
            "sid",
            "direction",
            "from_",
            "to",
            "status",
            "conversation_id",
            "first_message",
            "metadata",
            "started_at",
            "answered_at",
            "ended_at",
            "duration_s",
        )
        read_only_fields = fields

    def to_representation(self, instance: Call) -> dict[str, object]:
        data = super().to_representation(instance)
        data["from"] = data.pop("from_")
        return data


class NewCallSerializer(serializers.Serializer):
    """``from``: one of the organization's numbers; ``to``: who to call (E.164)."""

    locals()["from"] = serializers.RegexField(E164, max_length=16, help_text="One of your numbers, E.164.")
    to = serializers.RegexField(E164, max_length=16, help_text="The number to call, E.164.")
    first_message = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, help_text="What the assistant says first."
    )
    metadata = serializers.DictField(required=False, help_text="Yours: returned with the call and its webhooks.")

    def validate_metadata(self, value: dict[str, object]) -> dict[str, object]:
        if len(json.dumps(value)) > MAX_METADATA_CHARS:
            raise serializers.ValidationError(f"Keep metadata under {MAX_METADATA_CHARS} characters of JSON.")
        return value
