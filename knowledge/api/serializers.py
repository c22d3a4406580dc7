"""Knowledge documents over the API: upload a file (multipart) or paste text (JSON); status and passages."""

from __future__ import annotations

from rest_framework import serializers

from knowledge.models import Document, Kind, Status
from knowledge.queries import assistants

DOCUMENT_FIELDS = (
    "id",
    "title",
    "kind",
    "original_name",
    "language",
    "status",
    "error",
    "passage_count",
    "characters",
    "assistant_ids",
    "created_at",
    "updated_at",
    "indexed_at",
)


def _assistant_ids() -> serializers.PrimaryKeyRelatedField:
    return serializers.PrimaryKeyRelatedField(
        source="assistants",
        many=True,
        queryset=assistants(),
        required=False,
        help_text="Assistants that may answer from it; none: every assistant.",
    )


class DocumentSerializer(serializers.ModelSerializer):
    assistant_ids = _assistant_ids()
    kind = serializers.ChoiceField(choices=Kind.choices, read_only=True)
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)

    class Meta:
        model = Document
        fields = DOCUMENT_FIELDS
        read_only_fields = (
            "id",
            "kind",
            "original_name",
            "status",
            "error",
            "passage_count",
            "characters",
            "created_at",
            "updated_at",
            "indexed_at",
        )
        extra_kwargs = {"title": {"required": False}, "language": {"required": False}}


class DocumentCreateSerializer(serializers.Serializer):
    """Exactly one of ``file`` (multipart/form-data) and ``text`` (JSON or form)."""

    file = serializers.FileField(
        required=False, help_text=".md, .markdown, .txt, .html, .htm or .pdf, at most AURA_KNOWLEDGE_MAX_UPLOAD_MB."
    )
    text = serializers.CharField(required=False, allow_blank=True, help_text="Pasted text (read as Markdown).")
    title = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Default: the file name or first line."
    )
    language = serializers.CharField(required=False, max_length=16, default="en")
    assistant_ids = _assistant_ids()

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        has_file, has_text = attrs.get("file") is not None, bool(str(attrs.get("text") or "").strip())
        if has_file == has_text:
            raise serializers.ValidationError("Upload a file or paste text (one of the two).")
        return attrs


class DocumentFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices, required=False)
