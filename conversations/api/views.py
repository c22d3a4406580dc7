"""``/api/v1/conversations/``: list (filters, cursor pages), detail with turns, export (JSON/CSV), delete."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_tenants.utils import tenant_context
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request

from aura.api.errors import Conflict
from aura.api.views import UUID_ID, ApiViewMixin
from conversations import exports
from conversations.api.serializers import (
    ConversationDetailSerializer,
    ConversationFilterSerializer,
    ConversationSerializer,
    ExportFilterSerializer,
)
from conversations.models import Conversation, Status, Turn
from tenants.models import Organization

# An active conversation may still be written to by a live session; after this long it is stale.
ACTIVE_DELETE_AFTER = timedelta(hours=4)


def conversations_matching(filters: dict[str, object]) -> QuerySet[Conversation]:
    """The organization's conversations (the request runs in its schema), filtered, with counts."""
    queryset = exports.with_counts(Conversation.objects.all())
    if (after := filters.get("started_after")) is not None:
        queryset = queryset.filter(started_at__gte=after)
    if (before := filters.get("started_before")) is not None:
        queryset = queryset.filter(started_at__lt=before)
    for field in ("visitor_id", "status", "channel", "assistant_id"):
        if filters.get(field) not in (None, ""):
            queryset = queryset.filter(**{field: filters[field]})
    if filters.get("interrupted") is not None:
        queryset = queryset.filter(interrupted=filters["interrupted"])
    return queryset


@extend_schema_view(
    list=extend_schema(parameters=[ConversationFilterSerializer]),
    retrieve=extend_schema(responses=ConversationDetailSerializer),
)
class ConversationViewSet(
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ConversationSerializer
    lookup_value_regex = UUID_ID
    cursor_ordering = ("-started_at", "-id")

    def get_queryset(self) -> QuerySet[Conversation]:
        if self.action == "list":
            filters = ConversationFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            return conversations_matching(filters.validated_data)
        queryset = conversations_matching({})
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(Prefetch("turns", queryset=Turn.objects.order_by("index")))
        return queryset

    def get_serializer_class(self) -> type:
        return ConversationDetailSerializer if self.action == "retrieve" else ConversationSerializer

    def perform_destroy(self, instance: Conversation) -> None:
        if instance.status == Status.ACTIVE and instance.started_at > timezone.now() - ACTIVE_DELETE_AFTER:
            raise Conflict("This conversation is still going on; delete it once it has ended.", "conversation_active")
        instance.delete()

    @extend_schema(
        parameters=[ExportFilterSerializer],
        responses={
            (200, "application/json"): ConversationDetailSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per turn."),
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request: Request) -> StreamingHttpResponse:
        """Every matching conversation (newest first, at most 10,000) with its turns, streamed."""
        filters = ExportFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        options = dict(filters.validated_data)
        export_format = options.pop("format")
        organization = self.organization
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        if export_format == "csv":
            response = StreamingHttpResponse(_csv_rows(organization, options), content_type="text/csv; charset=utf-8")
        else:
            response = StreamingHttpResponse(_json_chunks(organization, options), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="conversations-{stamp}.{export_format}"'
        return response


def _json_chunks(organization: Organization, filters: dict[str, object]) -> Iterator[str]:
    # The response streams after the view returned (and left the tenant's schema): enter it again.
    with tenant_context(organization):
        yield from exports.json_chunks(exports.for_export(conversations_matching(filters)))


def _csv_rows(organization: Organization, filters: dict[str, object]) -> Iterator[str]:
    with tenant_context(organization):
        yield from exports.csv_lines(exports.for_export(conversations_matching(filters)))
