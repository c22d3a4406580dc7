"""Widget keys and API keys over the API (public-schema rows of the key's organization)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.templatetags.static import static
from rest_framework import serializers

from tenants.actions import MAX_ROTATION_GRACE
from tenants.embed import embed_tag
from tenants.models import ApiKey, ApiScope, WidgetKey, clean_origin
from tenants.queries import assistant_exists


class WidgetKeySerializer(serializers.ModelSerializer):
    allowed_origins = serializers.ListField(
        child=serializers.CharField(max_length=255),
        max_length=50,
        required=False,
        help_text='Origins allowed to use the key: "https://shop.example" or "https://*.shop.example". '
        "Empty on creation: the organization's own host.",
    )
    embed_snippet = serializers.SerializerMethodField()

    class Meta:
        model = WidgetKey
        fields = (
            "id",
            "key",
            "name",
            "assistant_id",
            "allowed_origins",
            "is_active",
            "title",
            "accent_color",
            "placement",
            "embed_snippet",
            "identity_secret_hint",
            "created_at",
        )
        read_only_fields = ("id", "key", "identity_secret_hint", "created_at")
        extra_kwargs = {"assistant_id": {"min_value": 1, "max_value": 2**63 - 1}}

    def get_embed_snippet(self, key: WidgetKey) -> str:
        return embed_tag(key, settings.AURA_PLATFORM_URL + static("aura/widget.js"))

    def validate_assistant_id(self, value: int) -> int:
        if not assistant_exists(value):  # in the key's organization's schema: the request runs in it
            raise serializers.ValidationError("No assistant of this organization has this id.", code="not_found")
        return value

    def validate_allowed_origins(self, value: list[str]) -> list[str]:
        try:
            return sorted({clean_origin(origin) for origin in value})
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class IdentitySecretSerializer(serializers.Serializer):
    identity_secret = serializers.CharField(
        read_only=True,
        help_text="The key's identity secret (docs/widget.md): your server signs its signed-in users' ids with it. "
        "Shown this once: store it now. Only its hint is shown afterwards.",
    )
    identity_secret_hint = serializers.CharField(read_only=True)


class NewWidgetKeySerializer(WidgetKeySerializer):
    identity_secret = serializers.CharField(
        read_only=True, help_text="The key's identity secret. Shown this once: store it now."
    )

    class Meta(WidgetKeySerializer.Meta):
        fields = (*WidgetKeySerializer.Meta.fields, "identity_secret")


class ApiKeySerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiScope.choices),
        min_length=1,
        max_length=3,
        help_text="admin includes write, write includes read.",
    )
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = (
            "id",
            "name",
            "prefix",
            "scopes",
            "expires_at",
            "is_active",
            "last_used_at",
            "revoked_at",
            "rotated_from",
            "created_by",
            "created_at",
        )
        read_only_fields = ("id", "prefix", "last_used_at", "revoked_at", "rotated_from", "created_by", "created_at")

    def get_is_active(self, key: ApiKey) -> bool:
        return key.revoked_at is None and not key.is_expired()


class IssuedApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret key. Shown this once: store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "key")


class RotateApiKeySerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        min_value=0,
        max_value=int(MAX_ROTATION_GRACE.total_seconds()),
        default=0,
        help_text="How long the old key keeps working (at most a week); 0 revokes it now.",
    )
